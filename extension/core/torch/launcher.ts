/**
 * How the engine's processes are started. One process for a plain run; for data-parallel training either N local
 * processes joined by the env:// rendezvous (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK — what the
 * tests use, and what works where torchrun does not, such as Debian's torch 1.13 on Python 3.11), or torchrun /
 * `accelerate launch` (what users run, across GPUs and machines). Both launchers are run as modules of the chosen
 * interpreter (`python -m torch.distributed.run`, `python -m accelerate.commands.launch`), so they belong to the
 * same installation as the engine.
 */
import * as net from "node:net";

/** How to start the engine. */
export type TorchLaunch =
  | { kind: "single" }
  /** N processes on this machine, env:// rendezvous on 127.0.0.1 (a free port when none is given). */
  | { kind: "local"; nproc: number; masterPort?: number }
  /** torchrun (torch.distributed.run) or `accelerate launch`, on one node or several. */
  | { kind: "torchrun" | "accelerate"; nprocPerNode: number; nnodes?: number; nodeRank?: number; masterAddr?: string; masterPort?: number };

/** One process to spawn. `rank` is the data-parallel rank whose stdout carries the answer (undefined: a launcher's merged stdout). */
export interface SpawnSpec {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  label: string;
  rank?: number;
}

/** The engine's module arguments. */
export function engineArgs(requestFile: string): string[] {
  return ["-m", "lora_drop_torch", requestFile];
}

/** The processes to start for a launch (`env` is the engine environment from pythonEnvironment). */
export async function launchSpecs(python: string, launch: TorchLaunch, requestFile: string, env: NodeJS.ProcessEnv, device = "auto"): Promise<SpawnSpec[]> {
  const module = engineArgs(requestFile);
  switch (launch.kind) {
    case "single":
      return [{ command: python, args: module, env, label: "python", rank: 0 }];
    case "local": {
      if (!Number.isInteger(launch.nproc) || launch.nproc < 1) throw new RangeError(`nproc must be a positive integer, got ${launch.nproc}`);
      const port = launch.masterPort ?? (await freePort());
      return Array.from({ length: launch.nproc }, (_, rank) => ({
        command: python, args: module, label: `python rank ${rank}`, rank,
        env: {
          ...env, MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), WORLD_SIZE: String(launch.nproc), RANK: String(rank),
          LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(launch.nproc),
        },
      }));
    }
    case "torchrun": {
      const args = ["-m", "torch.distributed.run", "--nproc-per-node", String(launch.nprocPerNode), "--nnodes", String(launch.nnodes ?? 1)];
      if (launch.nodeRank !== undefined) args.push("--node-rank", String(launch.nodeRank));
      if (launch.masterAddr) args.push("--master-addr", launch.masterAddr);
      if (launch.masterPort !== undefined) args.push("--master-port", String(launch.masterPort));
      return [{ command: python, args: [...args, ...module], env, label: "torchrun" }];
    }
    case "accelerate": {
      const nnodes = launch.nnodes ?? 1;
      const args = ["-m", "accelerate.commands.launch", "--num_processes", String(launch.nprocPerNode * nnodes), "--num_machines", String(nnodes)];
      if (device === "cuda" || device === "auto") args.push("--multi_gpu");
      if (launch.nodeRank !== undefined) args.push("--machine_rank", String(launch.nodeRank));
      if (launch.masterAddr) args.push("--main_process_ip", launch.masterAddr);
      if (launch.masterPort !== undefined) args.push("--main_process_port", String(launch.masterPort));
      return [{ command: python, args: [...args, ...module], env, label: "accelerate launch" }];
    }
  }
}

/** A TCP port free on 127.0.0.1 now (the rendezvous binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
