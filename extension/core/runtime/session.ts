/**
 * onnxruntime-node sessions: execution-provider selection and model loading with weights as external data.
 *
 * ORT only resolves external data inside the model file's folder (it rejects absolute paths and resolves
 * symlinks). So the model is written to a fresh temporary folder and each safetensors shard is hard-linked into
 * it (same file, no copy; ORT memory-maps it). Where a hard link is impossible (another file system), the shard is
 * read once into memory and handed to ORT as in-memory external data. The folder is removed once the session exists.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as Ort from "onnxruntime-node";
import { LoraDropError } from "../util/errors";
import { shardLocation } from "../models/weights";
import type { Logger } from "../util/progress";
import { readRegularFile } from "../io/regularFile";

/** What the user may ask for. */
export const DEVICE_CHOICES = ["auto", "cpu", "webgpu", "cuda"] as const;
/** One of DEVICE_CHOICES. */
export type DeviceChoice = (typeof DEVICE_CHOICES)[number];
/** The execution providers we drive. */
export type ExecutionProvider = "cpu" | "webgpu" | "cuda";

/** Loads onnxruntime-node lazily, with telemetry off unless the caller allows it. */
export function ort(): typeof Ort {
  if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = "1";
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("onnxruntime-node") as typeof Ort;
}

/** Options for creating a session. */
export interface SessionOptions {
  device: DeviceChoice;
  /** Safetensors shard files, in the order their `shardN.safetensors` locations were assigned. */
  shardFiles: string[];
  /** Threads for the CPU EP (default: ORT's choice, one per core). */
  threads?: number;
  /**
   * Prepacking copies weights into MLAS's packed layout: ~15 % faster matmuls at the cost of a second copy of
   * the weights in memory. On by default; `false` keeps the memory-mapped weights as the only copy.
   */
  prepack?: boolean;
  /**
   * The graph holds a backward pass (training, gradients). Its activations are kept only as long as the backward
   * needs them, so the session: keeps the values the graph recomputes (no common-subexpression elimination, which
   * would merge the recomputation into the forward pass: onnx/recompute.ts), and plans no memory pattern (the pattern
   * is one block the size of the run's peak, allocated from the arena beside the blocks of the first run, which
   * the arena keeps: twice the activations).
   */
  backward?: boolean;
  /** Extra ORT session configuration entries (`session.*` keys, e.g. `session.intra_op.allow_spinning`). */
  config?: Record<string, string>;
  log?: Logger;
}

/** The most CPU threads a run may ask for: four per logical CPU of this machine (more only thrash, and a huge count never finishes starting). */
export function maxThreads(): number {
  const cpus = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, cpus) * 4;
}

/** Throws INVALID_ARGUMENT unless `threads` is absent or a positive integer up to maxThreads(). */
export function checkThreads(threads: number | undefined): void {
  if (threads === undefined) return;
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > maxThreads()) {
    throw new LoraDropError("INVALID_ARGUMENT", `--threads must be an integer from 1 to ${maxThreads()} (four per CPU of this machine), got ${threads}`, undefined, "threads");
  }
}

/** A created session and the provider it runs on. */
export interface LoadedSession {
  session: Ort.InferenceSession;
  device: ExecutionProvider;
}

/** The provider `choice` tries first: the one a session gets unless it fails to start there. */
export function firstProvider(choice: DeviceChoice): ExecutionProvider | undefined {
  return providerOrder(choice)[0];
}

function providerOrder(choice: DeviceChoice): ExecutionProvider[] {
  return choice === "auto" ? (["cuda", "webgpu", "cpu"] as const).filter((ep) => providerLooksInstalled(ep) && (ep !== "webgpu" || hasGpuDevice())) : [choice];
}

/**
 * Whether this machine exposes a GPU to user space. On Linux, a Vulkan loader alone may only find Mesa's software
 * rasteriser (lavapipe), on which WebGPU runs far slower than the CPU EP, so `auto` wants a render node
 * (/dev/dri/renderD*) or an NVIDIA device. Elsewhere (D3D12, Metal) a WebGPU adapter is a GPU.
 */
export function hasGpuDevice(): boolean {
  if (process.platform !== "linux") return true;
  const list = (dir: string) => { try { return fs.readdirSync(dir); } catch { return []; } };
  return list("/dev/dri").some((n) => n.startsWith("renderD")) || list("/dev").some((n) => /^nvidia\d+$/.test(n));
}

/**
 * A cheap check, for `auto`, that a provider's libraries are present, so probing does not make the native code
 * print load failures: CUDA needs ORT's CUDA provider library next to the binding; WebGPU on Linux needs a Vulkan
 * loader. An explicit `--device` always tries for real and reports the provider's own error.
 */
export function providerLooksInstalled(ep: ExecutionProvider): boolean {
  if (ep === "cpu") return true;
  let bindingDir: string;
  try {
    bindingDir = path.join(path.dirname(require.resolve("onnxruntime-node")), "..", "bin", "napi-v6", process.platform, process.arch);
  } catch {
    return false;
  }
  if (ep === "cuda") {
    const lib = process.platform === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
    return fs.existsSync(path.join(bindingDir, lib));
  }
  if (process.platform !== "linux") return true;
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean), `/usr/lib/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`, "/usr/lib64", "/usr/lib", "/usr/local/lib"];
  return dirs.some((d) => fs.existsSync(path.join(d, "libvulkan.so.1")));
}

/** Creates a session for an ONNX model, trying providers in order for `auto`. */
export async function createSession(modelBytes: Uint8Array, opts: SessionOptions): Promise<LoadedSession> {
  checkThreads(opts.threads);
  const rt = ort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-session-"));
  try {
    const modelPath = path.join(dir, "model.onnx");
    fs.writeFileSync(modelPath, modelBytes);
    const externalData: { path: string; data: Buffer }[] = [];
    opts.shardFiles.forEach((file, i) => {
      const target = path.join(dir, shardLocation(i));
      try {
        fs.linkSync(path.resolve(file), target);
      } catch {
        externalData.push({ path: shardLocation(i), data: readRegularFile(file, { maxBytes: Number.MAX_SAFE_INTEGER, what: "a safetensors file" }) });
      }
    });
    const errors: string[] = [];
    const order = providerOrder(opts.device);
    for (const ep of order) {
      const so: Ort.InferenceSession.SessionOptions = {
        executionProviders: [ep],
        graphOptimizationLevel: "all",
        ...(opts.backward ? { enableMemPattern: false } : {}),
        logSeverityLevel: order.length > 1 && ep !== "cpu" ? 4 : 3,
        ...(externalData.length ? { externalData } : {}),
        ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
        ...(sessionConfig(opts) ? { extra: sessionConfig(opts) } : {}),
      };
      try {
        const session = await rt.InferenceSession.create(modelPath, so);
        opts.log?.info(`execution provider: ${ep}`);
        return { session, device: ep };
      } catch (e) {
        const msg = (e as Error).message.split("\n")[0]!.slice(0, 300);
        errors.push(`${ep}: ${msg}`);
        opts.log?.info(`execution provider ${ep} unavailable: ${msg}`);
      }
    }
    throw new LoraDropError("DEVICE_UNAVAILABLE", `no execution provider could run the model (${errors.join("; ")})` +
      (opts.device === "cuda" ? ". The CUDA provider needs CUDA 12 and the onnxruntime-node CUDA binaries (see docs/engines.md, CUDA)." : ""));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** ORT's nested `extra` session configuration for the options, or undefined when there is none. */
export function sessionConfig(opts: SessionOptions): Record<string, unknown> | undefined {
  const entries: Record<string, string> = {
    ...(opts.prepack === false ? { "session.disable_prepacking": "1" } : {}),
    ...(opts.backward ? { "optimization.disable_specified_optimizers": "CommonSubexpressionElimination" } : {}),
    ...opts.config,
  };
  if (!Object.keys(entries).length) return undefined;
  // onnxruntime-node flattens `extra` with dots: { session: { a: "1" } } becomes "session.a" = "1".
  const nested: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entries)) {
    const parts = key.split(".");
    let at = nested;
    for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>;
    at[parts[parts.length - 1]!] = value;
  }
  return nested;
}

/** A float32 ORT tensor. */
export function f32Tensor(data: Float32Array, dims: number[]): Ort.Tensor {
  return new (ort().Tensor)("float32", data, dims);
}

/** An int64 ORT tensor from numbers. */
export function i64Tensor(values: ArrayLike<number>, dims: number[]): Ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return new (ort().Tensor)("int64", data, dims);
}
