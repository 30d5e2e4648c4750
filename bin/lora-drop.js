#!/usr/bin/env node
// Thin launcher: the CLI lives in out/extension/cli (built by `npm run build`).
require("../out/extension/cli/main.js").main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exitCode = 1; }
);
