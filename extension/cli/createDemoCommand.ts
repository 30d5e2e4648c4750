/**
 * `lora-drop create-demo`: writes the demo workspace (a tiny Llama with Llama 2's tokenizer, a trained LoRA
 * adapter, a dataset) that the extension's "Create demo workspace" writes, and prints the commands to try next.
 */
import * as path from "node:path";
import { Command } from "commander";
import { createDemoWorkspace, DEMO_WORKSPACE } from "../core/demo/demoWorkspace";
import type { DemoWorkspace } from "../core/demo/demoWorkspace";
import { terminalContext } from "./terminal";

/** What was written and what to run next, with paths as the user typed them. */
export function demoSummary(r: DemoWorkspace, shown: (p: string) => string): string {
  const d = DEMO_WORKSPACE;
  const profile = path.join(r.dir, "profile.json");
  const width = Math.max(...[r.modelDir, r.adapterDir, r.dataFile].map((p) => shown(p).length));
  const row = (p: string, what: string) => `  ${shown(p).padEnd(width)}  ${what}`;
  return [
    `demo workspace written to ${shown(r.dir)} in ${r.seconds.toFixed(1)} s:`,
    row(r.modelDir, `tiny random Llama, ${d.model.numLayers} layers, hidden size ${d.model.hiddenSize}, Llama 2's tokenizer`),
    row(r.adapterDir, `LoRA adapter, r = ${d.train.r} on ${d.train.targets.join(", ")}, trained ${d.train.steps} steps (loss ${r.firstLoss.toFixed(2)} → ${r.finalLoss.toFixed(2)})`),
    row(r.dataFile, `${d.data.count} synthetic sentences`),
    "next, which layers matter:",
    `  npx lora-drop profile --model ${shown(r.modelDir)} --adapter ${shown(r.adapterDir)} --data ${shown(r.dataFile)} --out ${shown(profile)}`,
  ].join("\n");
}

/** Registers the command. */
export function registerCreateDemo(program: Command): void {
  program
    .command("create-demo")
    .description("write a demo workspace to try LoRA-drop on: a tiny model, a trained LoRA adapter and a dataset (offline, a few seconds)")
    .requiredOption("--out <dir>", "new (or empty) folder to write")
    .option("--quiet", "print only errors")
    .action(async (o) => {
      const ctx = terminalContext("create-demo", o);
      try {
        const result = await createDemoWorkspace(o.out, ctx);
        ctx.done();
        // Paths relative to where the command ran, so the printed next command can be pasted as it is.
        const shown = (p: string) => {
          const rel = path.relative(process.cwd(), p);
          return rel === "" ? "." : rel.startsWith("..") || path.isAbsolute(rel) ? p : rel;
        };
        if (!o.quiet) process.stdout.write(`${demoSummary(result, shown)}\n`);
      } finally {
        ctx.done();
      }
    });
}
