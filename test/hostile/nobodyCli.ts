/**
 * The CLI as another user can run it. A checkout may sit where that user cannot go (a 0700 home folder, a
 * `mktemp -d`): then the CLI's files — the launcher, the compiled engine, package.json and the production
 * dependencies named in package-lock.json — are copied into a world-readable temporary folder, with modes set so
 * that anyone may read them. Node itself must be reachable; when it is not, the caller skips with the reason.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BIN, REPO_ROOT } from "../helpers";

/** Where the launcher is that `uid` can run, or why there is none. */
export type CliFor = { bin: string; copied: boolean } | { skip: string };

/** True when `uid` can read `file` (and so enter every folder above it). */
export function canRead(uid: number, file: string): boolean | string {
  const r = spawnSync(process.execPath, ["-e", "require('fs').accessSync(process.argv[1], require('fs').constants.R_OK)", file], { uid, gid: uid, encoding: "utf8", timeout: 30_000 });
  if (r.error) return `cannot start ${process.execPath} as uid ${uid}: ${r.error.message}`;
  return r.status === 0;
}

/** The launcher `uid` can run: the checkout's own when reachable, else a copy under the system's temporary folder. */
export function cliFor(uid: number): CliFor {
  const inPlace = canRead(uid, BIN);
  if (typeof inPlace === "string") return { skip: inPlace };
  if (inPlace) return { bin: BIN, copied: false };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-cli-"));
  process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
  for (const rel of ["package.json", "bin", path.join("out", "extension"), ...productionPackages()]) copyTree(path.join(REPO_ROOT, rel), path.join(root, rel));
  openModes(root);
  const bin = path.join(root, "bin", "lora-drop.js");
  const copied = canRead(uid, bin);
  if (copied !== true) return { skip: `uid ${uid} cannot reach the checkout (${REPO_ROOT}) nor a copy in ${root}; set TMPDIR to a folder anyone may enter` };
  return { bin, copied: true };
}

/**
 * node_modules folders the CLI needs at run time: package-lock.json's packages not marked dev-only. Other
 * platforms' onnxruntime binaries are left out (the npm package ships every platform's, ~290 MB).
 */
export function productionPackages(): string[] {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([p, info]) => p.startsWith("node_modules/") && !info.dev && fs.existsSync(path.join(REPO_ROOT, p)))
    .map(([p]) => p);
}

/** The onnxruntime binaries of this platform are kept; the other platforms' folders under bin/napi-v6 are not. */
function otherPlatformBinaries(rel: string): boolean {
  const base = path.join("node_modules", "onnxruntime-node", "bin", "napi-v6");
  if (path.dirname(rel) === base) return path.basename(rel) !== process.platform;
  return path.dirname(path.dirname(rel)) === base && path.basename(rel) !== process.arch;
}

/** Copies a file or folder (files the lock lists twice, nested packages, are copied once). */
function copyTree(src: string, dest: string): void {
  const st = fs.statSync(src);
  if (st.isDirectory()) {
    if (otherPlatformBinaries(path.relative(REPO_ROOT, src))) return;
    fs.mkdirSync(dest, { recursive: true });
    for (const e of fs.readdirSync(src)) copyTree(path.join(src, e), path.join(dest, e));
  } else if (st.isFile() && !fs.existsSync(dest)) {
    fs.copyFileSync(src, dest);
  }
}

/** Makes a tree readable by anyone: folders 0755, files 0644 (0755 when executable), whatever the umask was. */
function openModes(p: string): void {
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    fs.chmodSync(p, 0o755);
    for (const e of fs.readdirSync(p)) openModes(path.join(p, e));
  } else {
    fs.chmodSync(p, st.mode & 0o111 ? 0o755 : 0o644);
  }
}
