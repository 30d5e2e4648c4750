/**
 * How the engine's processes are started. One process for a plain run; for data-parallel training either N local
 * processes joined by the env:// rendezvous (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK — what works
 * everywhere torch does, including Debian's torch 1.13 on Python 3.11 whose torchrun is broken), or torchrun /
 * `accelerate launch`. Every launcher runs on one node or several: each node runs the same command with its own
 * node rank. Both launchers are run as modules of the chosen interpreter (`python -m torch.distributed.run`,
 * `python -m accelerate.commands.launch`), so they belong to the same installation as the engine.
 */
import * as net from "node:net";
import { LoraDropError } from "../util/errors";

/** The launchers of a multi-process run. */
export const LAUNCHERS = ["local", "torchrun", "accelerate"] as const;
/** One of LAUNCHERS. */
export type Launcher = (typeof LAUNCHERS)[number];

/** A multi-process run: `nprocPerNode` processes on each of `nnodes` machines (default 1), started by `kind`. */
export interface MultiProcessLaunch {
  kind: Launcher;
  nprocPerNode: number;
  nnodes?: number;
  /** This machine's place among the nodes, 0 … nnodes-1 (default 0); only node 0 writes the results. */
  nodeRank?: number;
  /** Address of node 0, which every node can reach (default 127.0.0.1 on one node). */
  masterAddr?: string;
  /** Port of the rendezvous on node 0 (default: a free port on one node; required across nodes). */
  masterPort?: number;
}

/** How to start the engine. */
export type TorchLaunch = { kind: "single" } | MultiProcessLaunch;

/** One process to spawn. `rank` is the local rank whose stdout carries the answer (undefined: a launcher's merged stdout). */
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

/** Processes of the whole run (every node's). */
export function worldSize(launch: TorchLaunch): number {
  return launch.kind === "single" ? 1 : launch.nprocPerNode * (launch.nnodes ?? 1);
}

/** This machine's node rank (0 for a single-node run). */
export function nodeRankOf(launch: TorchLaunch | undefined): number {
  return launch && launch.kind !== "single" ? launch.nodeRank ?? 0 : 0;
}

/** Checks a launch's numbers; a bad one is INVALID_ARGUMENT naming the option. */
export function checkLaunch(launch: TorchLaunch): void {
  if (launch.kind === "single") return;
  const bad = (field: string, what: string): never => { throw new LoraDropError("INVALID_ARGUMENT", `${field} ${what}`, undefined, field); };
  const nnodes = launch.nnodes ?? 1;
  if (!(LAUNCHERS as readonly string[]).includes(launch.kind)) bad("launcher", `must be one of ${LAUNCHERS.join(", ")}, got ${launch.kind}`);
  if (!Number.isInteger(launch.nprocPerNode) || launch.nprocPerNode < 1) bad("nproc-per-node", `must be a positive integer, got ${launch.nprocPerNode}`);
  if (!Number.isInteger(nnodes) || nnodes < 1) bad("nnodes", `must be a positive integer, got ${launch.nnodes}`);
  const rank = launch.nodeRank ?? 0;
  if (!Number.isInteger(rank) || rank < 0 || rank >= nnodes) bad("node-rank", `must be within 0 … ${nnodes - 1} for ${nnodes} node(s), got ${launch.nodeRank}`);
  if (launch.masterPort !== undefined && !(Number.isInteger(launch.masterPort) && launch.masterPort > 0 && launch.masterPort < 65536)) bad("master-port", `must be a TCP port, got ${launch.masterPort}`);
  // Every node must meet at the same address and port: node 0's, which no node can guess.
  if (nnodes > 1 && (!launch.masterAddr || launch.masterPort === undefined)) bad(launch.masterAddr ? "master-port" : "master-addr", `is needed for a run on ${nnodes} nodes (node 0's address and a free port on it, the same on every node)`);
}

/**
 * The processes to start for a launch (`env` is the engine environment from pythonEnvironment). `device` is the
 * device every process runs on, resolved already (`accelerate launch` needs to know whether the processes go to
 * GPUs: callers resolve `auto` with probeDevice).
 */
export async function launchSpecs(python: string, launch: TorchLaunch, requestFile: string, env: NodeJS.ProcessEnv, device = "cpu"): Promise<SpawnSpec[]> {
  const module = engineArgs(requestFile);
  if (launch.kind === "single") return [{ command: python, args: module, env, label: "python", rank: 0 }];
  checkLaunch(launch);
  const nnodes = launch.nnodes ?? 1;
  const nodeRank = launch.nodeRank ?? 0;
  const total = worldSize(launch);
  switch (launch.kind) {
    case "local": {
      const port = launch.masterPort ?? (await freePort());
      const addr = launch.masterAddr ?? "127.0.0.1";
      return Array.from({ length: launch.nprocPerNode }, (_, local) => {
        const rank = nodeRank * launch.nprocPerNode + local;
        return {
          command: python, args: module, label: `python rank ${rank}`, rank: local,
          env: {
            ...env, MASTER_ADDR: addr, MASTER_PORT: String(port), WORLD_SIZE: String(total), RANK: String(rank),
            LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(launch.nprocPerNode), GROUP_RANK: String(nodeRank),
          },
        };
      });
    }
    case "torchrun": {
      // The underscore spellings: torch 2 accepts them beside the hyphenated ones, torch 1.13 knows only them.
      const args = ["-m", "torch.distributed.run", "--nproc_per_node", String(launch.nprocPerNode), "--nnodes", String(nnodes)];
      if (launch.nodeRank !== undefined) args.push("--node_rank", String(launch.nodeRank));
      if (launch.masterAddr) args.push("--master_addr", launch.masterAddr);
      if (launch.masterPort !== undefined) args.push("--master_port", String(launch.masterPort));
      return [{ command: python, args: [...args, ...module], env, label: "torchrun" }];
    }
    case "accelerate": {
      const args = ["-m", "accelerate.commands.launch", "--num_processes", String(total), "--num_machines", String(nnodes)];
      args.push(...accelerateDeviceArgs(device, total));
      if (launch.nodeRank !== undefined) args.push("--machine_rank", String(launch.nodeRank));
      if (launch.masterAddr) args.push("--main_process_ip", launch.masterAddr);
      if (launch.masterPort !== undefined) args.push("--main_process_port", String(launch.masterPort));
      return [{ command: python, args: [...args, ...module], env, label: "accelerate launch" }];
    }
  }
}

/**
 * `accelerate launch`'s device flags. `--multi_gpu` (which accelerate refuses for fewer than 2 processes) starts one
 * process per GPU through torch's elastic launcher; `--cpu` is one CPU process. Several CPU processes are started by
 * accelerate only through mpirun, whose ranks the engine's env:// rendezvous does not join: refused, naming the
 * launchers that do it.
 */
export function accelerateDeviceArgs(device: string, processes: number): string[] {
  if (device === "cuda") return processes > 1 ? ["--multi_gpu"] : [];
  if (processes > 1) {
    throw new LoraDropError("INVALID_ARGUMENT", `accelerate starts several ${device === "mps" ? "MPS" : "CPU"} processes only through mpirun, which the torch engine does not join; ` +
      (device === "mps" ? "Apple's MPS is one device: train with one process" : "use --launcher local or torchrun for data-parallel CPU training"), undefined, "launcher");
  }
  return device === "cpu" ? ["--cpu"] : [];
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
