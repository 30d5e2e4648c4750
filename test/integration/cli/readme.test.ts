/**
 * The README and docs/cli.md tell the truth about the CLI: every `lora-drop` command they name answers `--help`,
 * every option they give a command is one its `--help` lists, every `npm run` script they name exists, and the
 * README's example commands run, in order, in an empty folder, and do what the README says.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { BIN, REPO_ROOT, tmpDir } from "../../helpers";

const ENV = { ...process.env, ORT_DISABLE_TELEMETRY: "1" };
const README = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
const CLI_DOC = fs.readFileSync(path.join(REPO_ROOT, "docs", "cli.md"), "utf8");

/** The lines of every ```bash block, with indented continuation lines joined to the line they continue. */
function bashCommands(markdown: string): string[] {
  const out: string[] = [];
  for (const [, body] of markdown.matchAll(/```bash\n([\s\S]*?)```/g)) {
    for (const line of body!.split("\n")) {
      if (/^\s+\S/.test(line) && out.length) out[out.length - 1] += ` ${line.trim()}`;
      else if (line.trim()) out.push(line.trim());
    }
  }
  return out;
}

/** `lora-drop <command> …` invocations: the command (or "" for the program itself) and the options used. */
function cliInvocations(markdown: string): { command: string; options: string[]; line: string }[] {
  return bashCommands(markdown)
    .map((line) => line.replace(/\s+#.*$/, ""))
    .filter((line) => /^npx lora-drop\b/.test(line))
    .map((line) => {
      const words = line.split(/\s+/).slice(2);
      const command = words[0] && !words[0].startsWith("-") ? words[0] : "";
      return { command, options: [...new Set([...line.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]))], line };
    });
}

function cli(args: string[], cwd = REPO_ROOT) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", env: ENV, timeout: 300_000 });
}

test("every lora-drop command the README and docs/cli.md name answers --help, and lists every option they give it", () => {
  const uses = [...cliInvocations(README), ...cliInvocations(CLI_DOC)];
  const commands = [...new Set(uses.map((u) => u.command))];
  assert.ok(commands.includes("") && ["create-demo", "profile", "prune", "train", "pipeline"].every((c) => commands.includes(c)), `commands named: ${commands.join(", ")}`);
  const top = cli(["--help"]);
  assert.equal(top.status, 0, top.stderr);
  for (const command of commands.filter(Boolean)) assert.match(top.stdout, new RegExp(`^\\s+${command}\\b`, "m"), `lora-drop --help lists ${command}`);
  for (const command of commands) {
    const help = command ? cli([command, "--help"]) : top;
    assert.equal(help.status, 0, `${command} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^Usage: lora-drop${command ? ` ${command}` : ""} `, "m"));
    for (const u of uses.filter((x) => x.command === command)) {
      for (const option of u.options) assert.ok(help.stdout.includes(option), `${option} (in "${u.line.slice(0, 80)}…") is an option of lora-drop ${command}`);
    }
  }
});

test("every npm script the README names exists", () => {
  const scripts = Object.keys(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).scripts);
  const named = new Set([...README.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!));
  for (const [, list] of README.matchAll(/`npm run bench`, ((?:`[\w:]+`(?:, )?)+)/g)) for (const [, s] of list!.matchAll(/`([\w:]+)`/g)) named.add(s!);
  assert.ok(named.size >= 8, [...named].join(", "));
  for (const s of named) assert.ok(scripts.includes(s), `npm run ${s} exists`);
});

test("the README's example commands run in an empty folder and do what it says", () => {
  const cwd = tmpDir("lora-drop-readme-");
  const lines = cliInvocations(README).map((u) => u.line).filter((l) => !l.endsWith("--help"));
  assert.deepEqual(lines.map((l) => l.split(/\s+/)[2]), ["create-demo", "profile", "sweep", "prune", "train", "pipeline"]);
  const outputs: Record<string, string> = {};
  for (const line of lines) {
    const args = line.split(/\s+/).slice(2);
    const r = cli(args, cwd);
    assert.equal(r.status, 0, `${line}\n${r.stderr}`);
    outputs[args[0]!] = r.stdout;
  }
  assert.match(outputs["create-demo"]!, /^demo workspace written to demo in [\d.]+ s:/);
  assert.match(outputs["create-demo"]!, /npx lora-drop profile --model demo\/model --adapter demo\/adapter --data demo\/data\.jsonl --out demo\/profile\.json$/m);
  // The end of a profile: which layers matter, what T = 0.9 keeps, the file written and the next command.
  const end = outputs.profile!.trimEnd().split("\n").slice(-4);
  assert.match(end[0]!, /^Layers \d+, \d+ and \d+ matter most: together \d+% of the LoRA output/);
  assert.match(end[1]!, /^T = 0\.9 keeps \d+ of 8 layers \([\d, ]+\); the other \d+ would share one LoRA, \d+% fewer LoRA parameters\.$/);
  assert.equal(end[2], "wrote demo/profile.json");
  assert.equal(end[3], "next: npx lora-drop prune --adapter demo/adapter --profile demo/profile.json --out demo/adapter-lora-drop-T0.90");
  const kept = /keeps \d+ of 8 layers \(([\d, ]+)\)/.exec(end[1]!)![1]!;
  assert.match(outputs.prune!, new RegExp(`^kept: ${kept};`, "m"), "prune at T = 0.9 keeps the layers the profile said");
  // The sweep: the loss at every threshold, sorted by LoRA parameters, between the base model's and the full adapter's.
  const sweep = JSON.parse(fs.readFileSync(path.join(cwd, "demo", "sweep.json"), "utf8")) as { base_loss: number; full_loss: number; points: { lora_params: number; loss: number }[] };
  assert.ok(sweep.points.length >= 2 && sweep.full_loss < sweep.base_loss, `${sweep.points.length} points, full ${sweep.full_loss}, base ${sweep.base_loss}`);
  assert.deepEqual(sweep.points.map((p) => p.lora_params), [...sweep.points.map((p) => p.lora_params)].sort((a, b) => a - b));
  assert.match(outputs.sweep!, /^wrote demo\/sweep\.json/m);
  for (const f of ["demo/adapter-lora-drop/adapter_config.json", "demo/new-adapter/adapter_model.safetensors", "demo/run/report.md", "demo/run/adapter/adapter_config.json"]) {
    assert.ok(fs.existsSync(path.join(cwd, f)), `${f} written`);
  }
});

test("npm install builds the CLI (prepare), and a launcher without a build says in one line what to run", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.prepare, "npm run build");
  const bare = tmpDir("lora-drop-unbuilt-");
  fs.mkdirSync(path.join(bare, "bin"));
  fs.copyFileSync(BIN, path.join(bare, "bin", "lora-drop.js"));
  const r = spawnSync(process.execPath, [path.join(bare, "bin", "lora-drop.js"), "--help"], { encoding: "utf8", env: ENV });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `lora-drop: not built yet; run \`npm run build\` in ${bare} (npm install does it unless scripts are disabled)\n`);
});
