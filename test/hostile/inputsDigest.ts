/**
 * A digest of a run's inputs, to prove a refused (or accepted) run left them byte-identical: every regular file's
 * SHA-256 under the given paths, and for anything else (a FIFO, a device, a symlink) only its kind and target, so
 * taking the digest never reads from a pipe or a device.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Path → content hash (regular files) or kind (everything else), for every entry under `paths`. */
export function inputsDigest(paths: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      out[p] = "absent";
      return;
    }
    if (st.isSymbolicLink()) out[p] = `link → ${fs.readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[p] = "folder";
      for (const e of fs.readdirSync(p).sort()) visit(path.join(p, e));
    } else if (st.isFile()) out[p] = crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
    else out[p] = st.isFIFO() ? "fifo" : st.isSocket() ? "socket" : "device";
  };
  for (const p of paths) visit(p);
  return out;
}
