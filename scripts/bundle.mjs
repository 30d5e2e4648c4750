// Bundles the browser side (webview/) with esbuild. The host side is compiled by tsc into out/.
// The webview is excluded from the host's tsconfig (it needs DOM types), so it is typechecked here, first.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

if (existsSync("webview/main.ts")) {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", "webview", "--noEmit"], { stdio: "inherit" });
  } catch {
    console.error("bundle: the webview does not typecheck (tsc -p webview); see the errors above.");
    process.exit(1);
  }
  await build({
    entryPoints: ["webview/main.ts"],
    bundle: true,
    format: "iife",
    target: "es2022",
    outfile: "dist/webview/main.js",
    sourcemap: true,
    // Minified by default (the webview loads it on every open); LORA_DROP_MINIFY=0 keeps it readable.
    minify: process.env.LORA_DROP_MINIFY !== "0",
    // Lit checks this to drop its development-mode warnings.
    define: { "process.env.NODE_ENV": '"production"' },
    conditions: ["production"],
    logLevel: "warning",
  });
  // The stylesheet is served from the same folder as the script, so the panel's localResourceRoots
  // need to name only dist/webview.
  mkdirSync("dist/webview", { recursive: true });
  copyFileSync("media/panel.css", "dist/webview/panel.css");
}
