/**
 * The rule that keeps a run from destroying its own inputs, in one place: before anything is written, every input
 * and output of the run is resolved to its real path (symlinks followed, also for outputs that do not exist yet,
 * through their nearest existing parent), and an output that is, contains, or lies inside an input is refused with
 * OUTPUT_IS_INPUT, naming both. `--force` replaces an earlier output; it never applies to an input of the same run.
 * Outputs must not overlap each other either (a log inside the adapter folder that replaces it, for example).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError } from "../util/errors";

/** A path of a run and what it is, for messages: `role` in words, `option` as the CLI names it. */
export interface RunPath {
  path: string;
  role: string;
  option: string;
}

/** Most symbolic links followed while resolving one path (Linux's own limit is 40). */
const MAX_LINK_HOPS = 40;

/**
 * The real path of `p`: symlinks followed component by component, as the kernel would, and `..` taken after the
 * link it follows (not lexically). Components that do not exist yet are appended as they are, so an output that
 * will be created resolves to where it will land. A dangling symlink resolves to where it points.
 */
export function realPathOf(p: string): string {
  const pending = path.isAbsolute(p) ? splitPath(p) : [...splitPath(process.cwd()), ...splitPath(p)];
  let cur = path.parse(path.resolve("/")).root;
  let hops = 0;
  let missing = false;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, part);
    if (missing) {
      cur = next;
      continue;
    }
    let st: fs.Stats;
    try {
      st = fs.lstatSync(next);
    } catch {
      // Does not exist (yet): the rest is where it will be created.
      missing = true;
      cur = next;
      continue;
    }
    if (!st.isSymbolicLink()) {
      cur = next;
      continue;
    }
    if (++hops > MAX_LINK_HOPS) throw new LoraDropError("INVALID_ARGUMENT", "too many levels of symbolic links", p);
    const target = fs.readlinkSync(next);
    if (path.isAbsolute(target)) cur = path.parse(target).root;
    pending.unshift(...splitPath(target));
  }
  return cur;
}

function splitPath(p: string): string[] {
  return p.split(/[\\/]+/);
}

/** How `a` relates to `b`: the same path, `a` inside `b`, `a` containing `b`, or apart. */
function relation(a: string, b: string): "is" | "lies inside" | "contains" | undefined {
  if (a === b) return "is";
  const inside = (x: string, y: string) => x.startsWith(y.endsWith(path.sep) ? y : y + path.sep);
  if (inside(a, b)) return "lies inside";
  if (inside(b, a)) return "contains";
  return undefined;
}

/** dev:ino of an existing path (following symlinks), to catch hard links to an input; undefined when absent. */
function identity(p: string): string | undefined {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

function shown(r: RunPath, real: string): string {
  return path.resolve(r.path) === real ? r.path : `${r.path} (${real})`;
}

/**
 * Refuses a run whose outputs touch its inputs or each other. Call before the first write; undefined entries (an
 * option not given) are skipped. An empty path is an INVALID_ARGUMENT naming its option.
 */
export function checkRunPaths(inputs: readonly (RunPath | undefined)[], outputs: readonly (RunPath | undefined)[]): void {
  const given = (list: readonly (RunPath | undefined)[]) => list.filter((r): r is RunPath => r !== undefined);
  const ins = given(inputs);
  const outs = given(outputs);
  for (const r of [...ins, ...outs]) {
    if (typeof r.path !== "string" || r.path.trim() === "" || r.path.includes("\0")) {
      throw new LoraDropError("INVALID_ARGUMENT", `${r.option}: ${r.role} path is empty or not a path (${JSON.stringify(r.path)})`, undefined, r.option);
    }
  }
  const resolved = (list: RunPath[]) => list.map((r) => ({ r, real: realPathOf(r.path), id: identity(r.path) }));
  const realIns = resolved(ins);
  const realOuts = resolved(outs);
  for (const o of realOuts) {
    for (const i of realIns) {
      const rel = relation(o.real, i.real) ?? (o.id !== undefined && o.id === i.id ? "is" : undefined);
      if (!rel) continue;
      throw new LoraDropError("OUTPUT_IS_INPUT",
        `the output ${o.r.option} ${rel === "is" ? "is" : rel} ${i.r.role} ${i.r.option} ${shown(i.r, i.real)}, an input of this run; ` +
        "inputs are never written, replaced or removed (not even with --force): choose an output outside it",
        o.r.path, o.r.option);
    }
  }
  for (let a = 0; a < realOuts.length; a++) {
    for (let b = a + 1; b < realOuts.length; b++) {
      const x = realOuts[a]!;
      const y = realOuts[b]!;
      const rel = relation(x.real, y.real);
      if (!rel) continue;
      throw new LoraDropError("INVALID_ARGUMENT",
        `the output ${x.r.option} ${rel} ${y.r.role} ${y.r.option} ${shown(y.r, y.real)}, another output of this run; give them separate paths`,
        x.r.path, x.r.option);
    }
  }
}
