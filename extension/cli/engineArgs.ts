/**
 * The CLI options that choose the engine and say how it runs: `--engine`, `--device` (each engine has its own
 * devices), the torch engine's `--python` and `--dtype`, and for training the processes: `--nproc-per-node`,
 * `--nnodes`, `--node-rank`, `--master-addr`, `--master-port` and `--launcher`. Combinations the chosen engine
 * does not have (webgpu with torch, a dtype with onnx…) are refused by the engine's own check, so the CLI and the
 * extension give the same message.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { ENGINE_CHOICES, ENGINE_DEVICES, type EngineChoice, type EngineDevice } from "../core/torch/engineChoice";
import { TORCH_DTYPES, type TorchDtype } from "../core/torch/protocol";
import { LAUNCHERS, type Launcher, type TorchLaunch } from "../core/torch/launcher";
import { intArg } from "./args";

/** The engine fields of a command's parsed options. */
export interface EngineArgs {
  engine: EngineChoice;
  device: EngineDevice;
  python?: string;
  dtype?: TorchDtype;
}

/** Adds --engine, --device, --python and --dtype to a command. */
export function addEngineOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--engine <engine>", "onnx: onnxruntime in this process, nothing to install; torch: PyTorch + transformers + PEFT in Python (GPUs, several processes)").choices(ENGINE_CHOICES).default("onnx"))
    .addOption(new Option("--device <device>", "where the model runs: auto, cpu, cuda; webgpu (onnx engine); mps (torch engine)").choices(ENGINE_DEVICES).default("auto"))
    .option("--python <path>", "torch engine: the Python interpreter (default: $LORA_DROP_PYTHON, else python3 on PATH)")
    .addOption(new Option("--dtype <dtype>", "torch engine: precision of the base model (default float32)").choices(TORCH_DTYPES));
}

/** Adds the options that start several processes (torch engine training), on this machine and others. */
export function addLaunchOptions(cmd: Command): Command {
  return cmd
    .option("--nproc-per-node <n>", "torch engine: data-parallel processes on this machine (one per GPU)", intArg)
    .option("--nnodes <n>", "torch engine: machines taking part; run the same command on each with its --node-rank", intArg)
    .option("--node-rank <n>", "torch engine: this machine's rank among --nnodes, 0 … nnodes-1 (node 0 writes the output)", nonNegativeArg)
    .option("--master-addr <host>", "torch engine: address of node 0, reachable from every node")
    .option("--master-port <port>", "torch engine: a free port on node 0 for the rendezvous", intArg)
    .addOption(new Option("--launcher <launcher>", "torch engine: local (plain processes, env:// rendezvous; default), torchrun or accelerate").choices(LAUNCHERS));
}

/** The engine fields from parsed options. */
export function engineArgs(o: Record<string, unknown>): EngineArgs {
  return {
    engine: o.engine as EngineChoice, device: o.device as EngineDevice,
    ...(o.python !== undefined ? { python: o.python as string } : {}), ...(o.dtype !== undefined ? { dtype: o.dtype as TorchDtype } : {}),
  };
}

/** The launch from parsed options: undefined (one process) unless a launch option was given. */
export function launchArgs(o: Record<string, unknown>): { launch?: TorchLaunch } {
  const given = ["nprocPerNode", "nnodes", "nodeRank", "masterAddr", "masterPort", "launcher"].some((k) => o[k] !== undefined);
  if (!given) return {};
  return {
    launch: {
      kind: (o.launcher as Launcher | undefined) ?? "local", nprocPerNode: (o.nprocPerNode as number | undefined) ?? 1,
      ...(o.nnodes !== undefined ? { nnodes: o.nnodes as number } : {}), ...(o.nodeRank !== undefined ? { nodeRank: o.nodeRank as number } : {}),
      ...(o.masterAddr !== undefined ? { masterAddr: o.masterAddr as string } : {}), ...(o.masterPort !== undefined ? { masterPort: o.masterPort as number } : {}),
    },
  };
}

/** What a node other than node 0 prints when it is done: it took part, and node 0 writes (this node wrote nothing, not even `out`). */
export function nodeDoneLine(nodeRank: number, out: string, what: string): string {
  return `node ${nodeRank}: done; node 0 writes the ${what} (nothing was written to ${out} here)`;
}

function nonNegativeArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got ${v}`);
  return n;
}
