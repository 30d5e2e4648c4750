/**
 * Runs one job in a fresh worker process (extension/host/worker.ts) and resolves with its result. Node-only (no
 * `vscode`), so it is tested under plain Node. Cancel: the AbortSignal sends `cancel`, which the worker turns into
 * its own AbortSignal for the engine; if the worker has not ended `killAfterMs` later (native code does not look
 * at signals), it is killed. Either way the promise rejects with CancelledError.
 */
import { fork, type ChildProcess } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { CancelledError, deserializeError, LoraDropError } from "../core/util/errors";
import type { Logger, ProgressUpdate } from "../core/util/progress";
import { parseWorkerMessage, type HostToWorker, type Job, type JobResults, type TrainStep } from "../worker/jobProtocol";

/** How a job reports back and how it is stopped. */
export interface JobHooks {
  progress?: (update: ProgressUpdate) => void;
  log?: Logger;
  trainStep?: (step: TrainStep) => void;
  signal?: AbortSignal;
  /** Environment additions for the worker, e.g. ORT_DISABLE_TELEMETRY. */
  env?: Record<string, string>;
  /** Grace period between `cancel` and a kill (default 10 s). */
  killAfterMs?: number;
  /** The worker script (default: the compiled extension/worker/worker.js). */
  workerPath?: string;
}

/** The worker script compiled beside this module. */
export function defaultWorkerPath(): string {
  return path.join(__dirname, "..", "worker", "worker.js");
}

/**
 * The V8 heap limit for the worker, in MB: half the machine's memory, between 2 and 16 GiB. A profile of a large
 * model holds its per-token norms as JS numbers, which can outgrow Node's default limit.
 */
export function workerHeapMb(totalMemBytes = os.totalmem()): number {
  return Math.max(2048, Math.min(16384, Math.floor(totalMemBytes / 2 / 2 ** 20)));
}

/** Runs `job` in a worker process. */
export function runJob<J extends Job>(job: J, hooks: JobHooks = {}): Promise<JobResults[J["kind"]]> {
  return new Promise((resolve, reject) => {
    if (hooks.signal?.aborted) {
      reject(new CancelledError(job.kind));
      return;
    }
    // Inside VS Code process.execPath is Electron; ELECTRON_RUN_AS_NODE makes it a plain Node (and is ignored
    // by Node itself). The worker's stderr carries native messages from onnxruntime: they go to the log.
    const child: ChildProcess = fork(hooks.workerPath ?? defaultWorkerPath(), [], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: "1", ...hooks.env },
      execArgv: [`--max-old-space-size=${workerHeapMb()}`],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "json",
    });
    let settled = false;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stderrTail: string[] = [];
    const finish = (error: Error | undefined, result?: unknown) => {
      if (settled) return;
      settled = true;
      if (killTimer) clearTimeout(killTimer);
      hooks.signal?.removeEventListener("abort", onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill();
      if (error) reject(error);
      else resolve(result as JobResults[J["kind"]]);
    };
    const onAbort = () => {
      cancelled = true;
      send(child, { type: "cancel" });
      killTimer = setTimeout(() => {
        hooks.log?.warn(`the ${job.kind} worker did not stop ${hooks.killAfterMs ?? 10000} ms after cancel; killing it`);
        finish(new CancelledError(job.kind));
      }, hooks.killAfterMs ?? 10000);
    };
    hooks.signal?.addEventListener("abort", onAbort, { once: true });

    const forward = (level: "info" | "warn") => (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split(/\r?\n/)) {
        if (!line.trim()) continue;
        if (level === "warn") stderrTail.push(line), stderrTail.splice(0, Math.max(0, stderrTail.length - 20));
        hooks.log?.[level](`[worker] ${line}`);
      }
    };
    child.stdout?.on("data", forward("info"));
    child.stderr?.on("data", forward("warn"));

    child.on("message", (raw) => {
      const msg = parseWorkerMessage(raw);
      if (!msg) {
        hooks.log?.warn(`ignored a malformed message from the ${job.kind} worker`);
        return;
      }
      switch (msg.type) {
        case "progress": hooks.progress?.(msg.update); break;
        case "log": hooks.log?.[msg.level](msg.message); break;
        case "trainStep": hooks.trainStep?.(msg.step); break;
        case "done": finish(undefined, msg.result); break;
        case "failed": finish(deserializeError(msg.error)); break;
      }
    });
    child.on("error", (e) => finish(new LoraDropError("INVALID_ARGUMENT", `cannot start the worker process: ${e.message}`)));
    child.on("exit", (code, signal) => {
      if (settled) return;
      if (cancelled) return finish(new CancelledError(job.kind));
      // An exit without a result: a crash in native code or the OS killing it for memory.
      const hint = signal === "SIGKILL" || code === 137 ? " It was killed, probably for lack of memory: lower maxExamples/maxTokens or use a GPU." : "";
      const tail = stderrTail.length ? ` Last output: ${stderrTail.slice(-3).join(" | ")}` : "";
      finish(new Error(`the ${job.kind} worker process ended unexpectedly (${signal ?? `exit code ${code}`}).${hint}${tail}`));
    });
    send(child, { type: "start", job });
  });
}

function send(child: ChildProcess, msg: HostToWorker): void {
  if (child.connected) child.send(msg);
}
