// Packages the extension as a platform-specific .vsix (`vsce package --target`), keeping only that platform's
// onnxruntime-node binaries: the npm package ships all of them (~288 MB), one platform needs 25–86 MB.
//
//   npm run package                           # linux-x64 (default)
//   npm run package -- --target win32-x64     # or linux-arm64, darwin-arm64, win32-arm64
//   npm run package -- --no-build             # package the existing out/ and dist/
//
// The .vsix is written to the repository root as lora-drop-<version>-<target>.vsix. The base exclusions are in
// .vscodeignore; this script adds the other platforms' binaries to a temporary copy passed as --ignoreFile.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** vsce targets → onnxruntime-node's bin/napi-v6/<platform>/<arch> folders (1.30 ships no darwin-x64). */
const TARGETS = {
  "linux-x64": "linux/x64",
  "linux-arm64": "linux/arm64",
  "darwin-arm64": "darwin/arm64",
  "win32-x64": "win32/x64",
  "win32-arm64": "win32/arm64",
};

const argv = process.argv.slice(2);
const targetIndex = argv.indexOf("--target");
const target = targetIndex >= 0 ? argv[targetIndex + 1] : "linux-x64";
if (!(target in TARGETS)) {
  console.error(`package: unknown target ${target}; one of ${Object.keys(TARGETS).join(", ")}`);
  process.exit(2);
}
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const out = `${pkg.name}-${pkg.version}-${target}.vsix`;

if (!argv.includes("--no-build")) {
  execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["run", "--silent", "build"], { stdio: "inherit" });
}

const keep = TARGETS[target];
const others = Object.values(TARGETS).filter((t) => t !== keep).map((t) => `node_modules/onnxruntime-node/bin/napi-v6/${t}/**`);
const tmp = mkdtempSync(join(tmpdir(), "lora-drop-package-"));
const ignoreFile = join(tmp, ".vscodeignore");
writeFileSync(ignoreFile, `${readFileSync(".vscodeignore", "utf8")}\n# Added by scripts/package.mjs for --target ${target}\n${others.join("\n")}\n`);

const vsce = createRequire(import.meta.url).resolve("@vscode/vsce/vsce");
try {
  // A guard against stray files (a demo's output, a local model) slipping in: everything packaged must be
  // under one of these. .vscodeignore excludes by pattern; this names anything it missed.
  const allowed = [/^package\.json$/, /^README\.md$/i, /^CHANGELOG\.md$/i, /^LICENSE(\.\w+)?$/i, /^media\/icon\.png$/, /^media\/panel\.css$/, /^dist\/webview\//, /^out\/extension\/.*\.js$/, /^node_modules\//];
  const listed = execFileSync(process.execPath, [vsce, "ls", "--ignoreFile", ignoreFile], { encoding: "utf8" }).split(/\r?\n/).filter(Boolean);
  const strays = listed.filter((f) => !allowed.some((re) => re.test(f)));
  if (strays.length) {
    console.error(`package: files outside the extension's folders would be packaged; add them to .vscodeignore:\n  ${strays.slice(0, 30).join("\n  ")}`);
    process.exit(1);
  }
  // No LICENSE file or repository URL exists yet; vsce would stop to ask about them. Without a repository URL it
  // cannot rewrite the README's links to repository files (docs/…) either, and refuses; they stay relative.
  execFileSync(process.execPath, [vsce, "package", "--target", target, "--ignoreFile", ignoreFile, "--out", out, "--skip-license", "--allow-missing-repository", "--no-rewrite-relative-links"], { stdio: "inherit" });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`package: ${out} (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB)`);
