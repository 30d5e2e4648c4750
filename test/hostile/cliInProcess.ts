/**
 * The CLI run inside the current process: `main()` with the arguments, stdout and stderr captured. Many refusals
 * (options, outputs that are inputs) happen before any model is loaded, so running them without a new Node
 * process keeps the hostile corpus and the no-data-loss matrix fast; what the user sees is the same text.
 */
import { main } from "../../extension/cli/main";

/** What a CLI run printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `lora-drop <argv>` in this process. Not reentrant: one run at a time. */
export async function runCliInProcess(argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const writeOut = process.stdout.write;
  const writeErr = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => { out.push(String(chunk)); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => { err.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(["node", "lora-drop", ...argv]);
    return { code, stdout: out.join(""), stderr: err.join("") };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
}

/** The code and message of the one `error [CODE]: message` line of a run, if it printed one. */
export function cliError(stderr: string): { code: string; message: string } | undefined {
  const m = /^error \[([A-Z_]+)\]: (.*)$/m.exec(stderr);
  return m ? { code: m[1]!, message: m[2]! } : undefined;
}
