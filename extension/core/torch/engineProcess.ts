/**
 * Runs the Python engine: writes the request, starts the process(es), validates every stdout line, forwards
 * progress, log and step lines to the caller, and turns the end of the run into the result or one typed error.
 *
 * Each process is started in its own process group, so that a launcher's workers (torchrun, accelerate) are
 * signalled with it. Cancelling sends SIGINT (the engine stops and reports CANCELLED), then SIGTERM after a grace
 * period, then SIGKILL. No Python traceback reaches the caller: stderr goes to the log, and only its last line is
 * quoted when a process dies without answering.
 */
import { spawn, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { CancelledError, LoraDropError } from "../util/errors";
import { RunContext } from "../util/progress";
import { describeChoice, findPython, probeDevice, pythonEnvironment } from "./python";
import { launchSpecs, SpawnSpec, TorchLaunch } from "./launcher";
import { parseTorchLine, TorchErrorLine, TorchLine, TorchRequest, TorchResult, TorchStepLine } from "./protocol";

/** How to run the engine. */
export interface EngineRunOptions {
  /** The interpreter (else $LORA_DROP_PYTHON, else python3 on PATH). */
  python?: string;
  /** One process (default), N local processes, torchrun or accelerate. */
  launch?: TorchLaunch;
  /** Milliseconds from SIGINT to SIGTERM, and from SIGTERM to SIGKILL, on cancel (default 10 000). */
  graceMs?: number;
  /** Extra environment variables for the engine. */
  env?: NodeJS.ProcessEnv;
  /** Every optimiser step, as the engine reports it. */
  onStep?: (step: TorchStepLine) => void;
  /** The process ids once started (tests use them to kill a process outright). */
  onSpawn?: (pids: number[]) => void;
}

/** Default grace period between escalating signals. */
export const DEFAULT_GRACE_MS = 10_000;
/** Lines of each process's stderr kept to explain a process that died without answering. */
const STDERR_KEPT = 40;

interface Running {
  spec: SpawnSpec;
  child: ChildProcess;
  stderr: string[];
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

/** Runs one request to its end; resolves with the result line, or rejects with a LoraDropError. */
export async function runTorchEngine<R extends TorchRequest>(request: R, workDir: string, opts: EngineRunOptions, ctx: RunContext = {}): Promise<Extract<TorchResult, { command: R["command"] }>> {
  const requestFile = path.join(workDir, "request.json");
  fs.writeFileSync(requestFile, JSON.stringify(request));
  const choice = findPython(opts.python);
  const launch = opts.launch ?? { kind: "single" };
  const env = pythonEnvironment(process.env, opts.env);
  // accelerate must be told whether its processes go to GPUs: `auto` is resolved by the interpreter's torch.
  const device = launch.kind === "accelerate" && request.device === "auto" ? await probeDevice(choice, env) : request.device;
  const specs = await launchSpecs(choice.command, launch, requestFile, env, device);
  if (ctx.signal?.aborted) throw new CancelledError(`torch ${request.command}`);

  let result: TorchResult | undefined;
  let failure: LoraDropError | undefined;
  const running: Running[] = [];
  const timers: NodeJS.Timeout[] = [];
  const signalAll = (sig: NodeJS.Signals, except?: Running) => {
    for (const r of running) if (r !== except && !r.exit) killGroup(r.child, sig);
  };
  // Any failure stops the other processes: a rank waiting in a collective would otherwise wait for ever.
  const fail = (e: LoraDropError, from?: Running) => {
    failure ??= e;
    signalAll("SIGTERM", from);
    timers.push(setTimeout(() => signalAll("SIGKILL"), opts.graceMs ?? DEFAULT_GRACE_MS));
  };
  const onLine = (r: Running, text: string) => {
    if (text.trim() === "") return;
    let line: TorchLine;
    try {
      line = parseTorchLine(text, r.spec.label);
    } catch (e) {
      fail(e as LoraDropError);
      return;
    }
    if (line.type === "error") return fail(errorOf(line, r.spec.label), r);
    // Other ranks only ever report errors; rank 0 (or a launcher's merged output) carries the run.
    if (r.spec.rank !== undefined && r.spec.rank !== 0) return;
    if (line.type === "progress") ctx.progress?.report({ step: line.step, total: line.total, message: line.message });
    else if (line.type === "log") (line.level === "warn" ? ctx.log?.warn : ctx.log?.info)?.call(ctx.log, line.message);
    else if (line.type === "step") {
      opts.onStep?.(line);
      ctx.progress?.report({ step: line.step, total: line.totalSteps, message: `loss ${line.loss.toFixed(4)} lr ${line.lr.toExponential(2)}`, tokensPerSecond: line.tokensPerSecond });
    } else if (line.command !== request.command) fail(new LoraDropError("ENGINE_FAILED", `the torch engine answered a ${request.command} request with a ${line.command} result`, r.spec.label));
    else result = line;
  };

  const start = (spec: SpawnSpec) => new Promise<void>((resolve) => {
    const child = spawn(spec.command, spec.args, { env: spec.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const r: Running = { spec, child, stderr: [] };
    running.push(r);
    child.once("error", (e: NodeJS.ErrnoException) => {
      r.exit = { code: null, signal: null };
      fail(spawnError(e, spec.command === choice.command ? describeChoice(choice) : spec.command));
      resolve();
    });
    readline.createInterface({ input: child.stdout! }).on("line", (t) => onLine(r, t));
    readline.createInterface({ input: child.stderr! }).on("line", (t) => {
      r.stderr.push(t);
      if (r.stderr.length > STDERR_KEPT) r.stderr.shift();
      ctx.log?.info(`[${spec.label}] ${t}`);
    });
    child.once("close", (code, sig) => {
      r.exit = { code, signal: sig };
      // A process gone without a word (killed, crashed) leaves the other ranks waiting in a collective: stop them.
      if (code !== 0 && !failure) fail(diedError(r), r);
      resolve();
    });
  });

  const onAbort = () => {
    signalAll("SIGINT");
    const grace = opts.graceMs ?? DEFAULT_GRACE_MS;
    timers.push(setTimeout(() => signalAll("SIGTERM"), grace), setTimeout(() => signalAll("SIGKILL"), 2 * grace));
  };
  const onExit = () => signalAll("SIGKILL");
  process.once("exit", onExit);
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const ended = specs.map((spec) => start(spec));
    opts.onSpawn?.(running.map((r) => r.child.pid).filter((p): p is number => p !== undefined));
    await Promise.all(ended);
  } finally {
    for (const t of timers) clearTimeout(t);
    process.off("exit", onExit);
    ctx.signal?.removeEventListener("abort", onAbort);
  }

  if (ctx.signal?.aborted) throw new CancelledError(`torch ${request.command}`);
  if (failure) throw failure;
  if (!result) throw diedError(running[0]!);
  return result as Extract<TorchResult, { command: R["command"] }>;
}

/** Runs `f` with a fresh temporary folder for the request and the engine's result files, removed afterwards. */
export async function withWorkDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-torch-"));
  try {
    return await f(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Signals a child's whole process group (it leads one: spawned detached), falling back to the child alone. */
function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try { child.kill(sig); } catch { /* already gone */ }
  }
}

/** The typed error of an error line: the engine's own code, or ENGINE_FAILED for an unexpected Python exception. */
function errorOf(line: TorchErrorLine, label: string): LoraDropError {
  const where = line.rank ? `rank ${line.rank}: ` : "";
  if (line.code === "INTERNAL") return new LoraDropError("ENGINE_FAILED", `${where}the torch engine failed unexpectedly: ${line.message}`, line.file ?? label);
  if (line.code === "CANCELLED") return new CancelledError("torch engine");
  return new LoraDropError(line.code, `${where}${line.message}`, line.file, line.field);
}

/** The error for an interpreter that cannot be started. */
function spawnError(e: NodeJS.ErrnoException, what: string): LoraDropError {
  const why = e.code === "ENOENT" ? "was not found" : e.code === "EACCES" ? "is not executable" : `cannot be started (${e.code ?? e.message})`;
  return new LoraDropError("MISSING_DEPENDENCY",
    `${what} ${why}; install Python 3 with torch, transformers and peft, or name an interpreter that has them with the pythonPath setting or $LORA_DROP_PYTHON`);
}

/** The error for a process that ended without a result or an error line. */
function diedError(r: Running): LoraDropError {
  const how = r.exit?.signal ? `was killed by ${r.exit.signal}` : `exited with code ${r.exit?.code}`;
  // A process killed by a signal was stopped from outside: its last words are about something else.
  const last = r.exit?.signal ? undefined : [...r.stderr].reverse().find((l) => l.trim() !== "");
  return new LoraDropError("ENGINE_FAILED", `the torch engine (${r.spec.label}) ${how} before answering${last ? `; its last message: ${last.trim().slice(0, 300)}` : ""}`);
}
