/**
 * The `lora-drop` command line: a thin layer over the engine. Each command lives in its own file and registers
 * itself here. Every input error, the argument parser's included, ends as one line `error [CODE]: …` and exit 2.
 */
import { Command, CommanderError } from "commander";
import { registerProfile } from "./profileCommand";
import { registerPrune } from "./pruneCommand";
import { registerPipeline } from "./pipelineCommand";
import { registerTrain } from "./trainCommand";
import { registerCreateDemo } from "./createDemoCommand";
import { registerSweep } from "./sweepCommand";
import { reportError } from "./terminal";
import { LoraDropError } from "../core/util/errors";

/** Builds the program with every command registered. */
export function buildProgram(): Command {
  const program = new Command("lora-drop")
    .description("Profile LoRA adapters by their output (LoRA-drop) and prune them with drop-and-share.")
    .version(require("../../../package.json").version)
    // Commander's own error lines are replaced by typed errors (main); help and --version still print. Set before
    // the commands are added, so that they inherit it.
    .configureOutput({ outputError: () => {} })
    .exitOverride();
  registerProfile(program);
  registerPrune(program);
  registerSweep(program);
  registerPipeline(program);
  registerTrain(program);
  registerCreateDemo(program);
  return program;
}

/** The typed error of an argument-parser failure: the parser's sentence, under INVALID_ARGUMENT. */
export function commanderError(e: CommanderError): LoraDropError {
  const text = e.message.replace(/^error:\s*/i, "");
  const hint = e.code === "commander.help" ? "no command given; run lora-drop --help" : `${text} (see --help)`;
  return new LoraDropError("INVALID_ARGUMENT", hint);
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    // --help and --version end the parse with exit code 0; they are not errors.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : reportError(commanderError(e));
    return reportError(e);
  }
}
