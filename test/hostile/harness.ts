/**
 * Drives caseRunner in a child process: one case at a time, each under a time limit. A child that dies is a crash,
 * one that does not answer in time is a hang (it is killed and a fresh child takes the next case); either way the
 * run goes on and the case is reported.
 */
import { fork, ChildProcess } from "node:child_process";
import * as path from "node:path";
import { HostileCase } from "./corpus";
import { CaseOutcome } from "./caseRunner";

/** A case's outcome as seen from outside the runner. */
export interface CaseResult {
  case: HostileCase;
  kind: CaseOutcome["kind"] | "crashed" | "hung";
  code?: string;
  message?: string;
  file?: string;
  ms: number;
  maxRssKb?: number;
}

/** Options of a corpus run. */
export interface RunOptions {
  /** A case that takes longer is a hang (default 60 s: generous, since the test machine may be busy). */
  timeoutMs?: number;
  /** Called with the runner's peak memory right after it started (kB), before any case. */
  onStart?: (maxRssKb: number) => void;
}

const RUNNER = path.join(__dirname, "caseRunner.js");

class Runner {
  private stderr = "";
  private dead = false;
  private constructor(private readonly child: ChildProcess, readonly startRssKb: number) {
    child.stderr?.on("data", (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000); });
    child.on("exit", () => { this.dead = true; });
  }

  static start(): Promise<Runner> {
    const child = fork(RUNNER, [], { stdio: ["ignore", "ignore", "pipe", "ipc"], env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
    return new Promise((resolve, reject) => {
      child.once("message", (m: { maxRssKb: number }) => resolve(new Runner(child, m.maxRssKb)));
      child.once("exit", (code, signal) => reject(new Error(`the case runner exited at start (${code ?? signal})`)));
    });
  }

  run(c: HostileCase, timeoutMs: number): Promise<CaseResult> {
    const t0 = Date.now();
    return new Promise((resolve) => {
      const done = (r: CaseResult) => {
        clearTimeout(timer);
        this.child.off("message", onMessage);
        this.child.off("exit", onExit);
        resolve(r);
      };
      const onMessage = (o: CaseOutcome) => done({ case: c, kind: o.kind, code: o.code, message: o.message, file: o.file, ms: o.ms, maxRssKb: o.maxRssKb });
      const onExit = (code: number | null, signal: string | null) =>
        done({ case: c, kind: "crashed", message: `runner exited (${code ?? signal}): ${this.stderr.trim()}`, ms: Date.now() - t0 });
      const timer = setTimeout(() => {
        this.child.off("exit", onExit);
        this.dead = true;
        this.child.kill("SIGKILL");
        done({ case: c, kind: "hung", message: `no answer in ${timeoutMs} ms`, ms: Date.now() - t0 });
      }, timeoutMs);
      this.child.on("message", onMessage);
      this.child.once("exit", onExit);
      this.child.send(c);
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  stop(): void {
    if (this.alive) this.child.kill();
  }
}

/** Runs cases in order in one child process, replacing it after a crash or a hang. */
export async function runCases(cases: HostileCase[], o: RunOptions = {}): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  let runner = await Runner.start();
  o.onStart?.(runner.startRssKb);
  try {
    for (const c of cases) {
      if (!runner.alive) runner = await Runner.start();
      results.push(await runner.run(c, o.timeoutMs ?? 60_000));
    }
  } finally {
    runner.stop();
  }
  return results;
}
