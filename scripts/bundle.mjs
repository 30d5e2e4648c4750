// Bundles the browser side (webview/) with esbuild. The host side is compiled by tsc into out/.
import { build } from "esbuild";
import { existsSync } from "node:fs";

if (existsSync("webview/main.ts")) {
  await build({
    entryPoints: ["webview/main.ts"],
    bundle: true,
    format: "iife",
    target: "es2022",
    outfile: "dist/webview/main.js",
    sourcemap: true,
    logLevel: "warning",
  });
}
