#!/usr/bin/env node
// Thin launcher: the CLI lives in out/extension/cli, which `npm install` builds (the `prepare` script). When the
// build is missing (installed with --ignore-scripts, or out/ deleted), say in one line what to run instead of
// printing a MODULE_NOT_FOUND stack trace.
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const entry = path.join(root, "out", "extension", "cli", "main.js");
if (!fs.existsSync(entry)) {
  console.error(`lora-drop: not built yet; run \`npm run build\` in ${root} (npm install does it unless scripts are disabled)`);
  process.exit(1);
}
require(entry).main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exitCode = 1; }
);
