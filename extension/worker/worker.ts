/**
 * The worker process's entry point (forked by jobRunner). It receives one `start` message, runs that job on the
 * engine with a RunContext whose progress and log lines are sent back, turns a `cancel` message into an abort
 * of the engine's AbortSignal, sends `done` or `failed`, and exits. One process per job: every native resource
 * the engine held is gone when it ends.
 */
import { CancelledError, serializeError } from "../core/util/errors";
import type { RunContext } from "../core/util/progress";
import { runJobInProcess } from "./jobHandlers";
import { parseHostToWorker, type Job, type TrainStep, type WorkerToHost } from "./jobProtocol";

const controller = new AbortController();
let started = false;

function post(msg: WorkerToHost): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, undefined, () => resolve());
  });
}

async function run(job: Job): Promise<void> {
  // Progress can fire thousands of times a second during a fast run; the host needs at most a few updates.
  let lastProgress = 0;
  const ctx: RunContext & { onStep: (s: TrainStep) => void } = {
    signal: controller.signal,
    progress: {
      report(update) {
        const now = Date.now();
        if (now - lastProgress < 100 && update.step < update.total) return;
        lastProgress = now;
        void post({ type: "progress", update });
      },
    },
    log: {
      info: (message) => void post({ type: "log", level: "info", message }),
      warn: (message) => void post({ type: "log", level: "warn", message }),
    },
    onStep: (step) => void post({ type: "trainStep", step }),
  };
  try {
    const result = await runJobInProcess(job, ctx);
    await post({ type: "done", result });
  } catch (e) {
    await post({ type: "failed", error: serializeError(controller.signal.aborted && !(e instanceof CancelledError) ? new CancelledError(job.kind) : e) });
  }
  process.disconnect?.();
  process.exit(0);
}

process.on("message", (raw) => {
  const msg = parseHostToWorker(raw);
  if (!msg) return;
  if (msg.type === "cancel") {
    controller.abort();
  } else if (!started) {
    started = true;
    void run(msg.job);
  }
});
// The host went away (VS Code closed, extension host restarted): stop, do not keep computing for nobody.
process.on("disconnect", () => {
  controller.abort();
  setTimeout(() => process.exit(0), 2000).unref();
});
