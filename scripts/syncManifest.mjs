// Writes the extension's manifest fields into package.json from extension/host/manifest.ts (compiled to out/):
// contributes, activationEvents, extensionKind, categories, icon, main. Only these keys change, each through
// `npm pkg set`, so concurrent edits of other keys (scripts, dependencies) are not disturbed.
// Run after `tsc -p .`:  node scripts/syncManifest.mjs   (test/unit/hostManifest.test.ts checks they agree).
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const manifest = require("../out/extension/host/manifest.js");

const fields = {
  main: "./out/extension/extension.js",
  extensionKind: ["workspace"],
  categories: ["Machine Learning", "Data Science", "Visualization"],
  keywords: ["lora", "peft", "pruning", "onnx", "llm"],
  icon: "media/icon.png",
  activationEvents: manifest.ACTIVATION_EVENTS,
  contributes: manifest.contributes(),
};
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const args = ["pkg", "set", "--json", ...Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`)];
execFileSync(npm, args, { stdio: "inherit" });
console.log(`package.json: set ${Object.keys(fields).join(", ")}`);
