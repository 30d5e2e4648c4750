/**
 * The `lora-drop` command line: a thin layer over the engine. Each command lives in its own file and registers
 * itself here.
 */
import { Command, CommanderError } from "commander";
import { registerProfile } from "./profileCommand";
import { registerPrune } from "./pruneCommand";
import { registerPipeline } from "./pipelineCommand";
import { registerTrain } from "./trainCommand";
import { registerSweep } from "./sweepCommand";
import { reportError } from "./terminal";

/** Builds the program with every command registered. */
export function buildProgram(): Command {
  const program = new Command("lora-drop")
    .description("Profile LoRA adapters by their output (LoRA-drop) and prune them with drop-and-share.")
    .version(require("../../../package.json").version)
    .exitOverride();
  registerProfile(program);
  registerPrune(program);
  registerSweep(program);
  registerPipeline(program);
  registerTrain(program);
  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    return reportError(e);
  }
}
