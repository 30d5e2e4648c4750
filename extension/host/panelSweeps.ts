/**
 * The panel's sweeps, host side: the sweeps saved beside the primary profile (one per mode, reopened with it when
 * they were measured from that very profile run), and "Evaluate thresholds": a sweep run in the worker with its
 * progress on the panel and a cancel from it, saved beside the profile and shown when done. Pure (no `vscode`):
 * the run itself and the notifications are the host's, passed in.
 */
import * as fs from "node:fs";
import { CancelledError, isLoraDropError } from "../core/util/errors";
import type { Logger } from "../core/util/progress";
import type { ProfileFile } from "../core/importance/profileSchema";
import type { SweepFile } from "../core/sweep/sweepSchema";
import { sweepPathFor } from "../core/sweep/sweepFile";
import { PRUNE_MODES, type PruneMode } from "../core/adapter/dropRecord";
import type { HostToWebview } from "../viewModel/protocol";
import { sweepMatchesProfile } from "../viewModel/sweepChart";
import { UserError } from "./errorText";
import { containingRoot } from "./paths";

/** A sweep the panel asked for, with its output decided by the host. */
export interface PanelSweepPlan {
  profilePath: string;
  profile: ProfileFile;
  mode: PruneMode;
  /** Beside the profile: sweepPathFor(profilePath, mode). */
  outFile: string;
}

/** How a running sweep reports and is stopped. */
export interface SweepHooks {
  signal: AbortSignal;
  progress(fraction: number, message: string): void;
}

/** What the sweeps need from the panel's host. */
export interface SweepHost {
  /** Sends to the webview (dropped until it is ready). */
  send(message: HostToWebview): void;
  roots(): string[];
  /** Runs the sweep (worker, notification); resolves to the file written. */
  evaluate(plan: PanelSweepPlan, hooks: SweepHooks): Promise<string>;
  loadSweep(file: string): SweepFile;
  reportError(what: string, e: unknown): void;
  log: Logger;
  /** Called after every change the test API reports. */
  changed(): void;
}

/** Progress messages are sent at most this often while a sweep runs. */
const PROGRESS_INTERVAL_MS = 150;

/** The sweeps of the primary profile and the evaluation in flight. */
export class PanelSweeps {
  private readonly sweeps = new Map<PruneMode, { file: string; sweep: SweepFile }>();
  private running: { mode: PruneMode; controller: AbortController; fraction: number; message: string; sentAt: number } | undefined;

  constructor(private readonly host: SweepHost) {}

  /** A new primary profile: forget the old sweeps and reopen this profile's own (stale ones are skipped with a log line). */
  profileShown(file: string, profile: ProfileFile): void {
    this.sweeps.clear();
    this.host.send({ type: "clearSweeps" });
    for (const mode of PRUNE_MODES) {
      const path = sweepPathFor(file, mode);
      if (!fs.existsSync(path)) continue;
      try {
        const sweep = this.host.loadSweep(path);
        if (!sweepMatchesProfile(sweep, profile)) {
          this.host.log.info(`the sweep ${path} was measured from another run of the profile; evaluate the thresholds again`);
          continue;
        }
        this.sweeps.set(mode, { file: path, sweep });
        this.host.send({ type: "sweep", sweep, sourcePath: path });
      } catch (e) {
        this.host.log.warn(`could not read the sweep ${path}: ${(e as Error).message}`);
      }
    }
  }

  /** After `ready`: the sweeps, and the evaluation's progress if one runs. */
  replay(): void {
    for (const { file, sweep } of this.sweeps.values()) this.host.send({ type: "sweep", sweep, sourcePath: file });
    const r = this.running;
    if (r) this.host.send({ type: "sweepProgress", mode: r.mode, fraction: r.fraction, message: r.message });
  }

  /** The modes with a sweep on screen, and whether an evaluation runs. */
  report(): { sweeps: PruneMode[]; evaluating: boolean } {
    return { sweeps: [...this.sweeps.keys()], evaluating: this.running !== undefined };
  }

  /** "Evaluate thresholds" in `mode` for the primary profile: runs the sweep and shows it. */
  async evaluate(mode: PruneMode, primary: { file: string; profile: ProfileFile } | undefined): Promise<void> {
    if (this.running) {
      this.host.send({ type: "sweepProgress", mode: this.running.mode, fraction: this.running.fraction, message: this.running.message });
      return;
    }
    const controller = new AbortController();
    this.running = { mode, controller, fraction: 0, message: "starting…", sentAt: 0 };
    this.host.changed();
    try {
      const plan = this.plan(mode, primary);
      const file = await this.host.evaluate(plan, { signal: controller.signal, progress: (f, m) => this.progress(f, m) });
      const sweep = this.host.loadSweep(file);
      this.sweeps.set(mode, { file, sweep });
      this.host.send({ type: "sweep", sweep, sourcePath: file });
      this.host.send({ type: "sweepDone", mode, outcome: "completed" });
    } catch (e) {
      const cancelled = e instanceof CancelledError || (isLoraDropError(e) && e.code === "CANCELLED");
      this.host.send({ type: "sweepDone", mode, outcome: cancelled ? "cancelled" : "failed", ...(cancelled ? {} : { message: (e instanceof Error ? e.message : String(e)).slice(0, 8000) }) });
      this.host.reportError("Evaluate thresholds", e);
    } finally {
      this.running = undefined;
      this.host.changed();
    }
  }

  /** The panel's Cancel. */
  cancel(): void {
    if (!this.running) return;
    this.host.log.info("evaluate thresholds: cancel requested from the panel");
    this.running.controller.abort();
  }

  /**
   * Where the sweep goes: beside the profile, and only inside the workspace (a profile may come from anywhere; the
   * button must not become a way to write outside the workspace). The profile's data must still be there.
   */
  private plan(mode: PruneMode, primary: { file: string; profile: ProfileFile } | undefined): PanelSweepPlan {
    if (!primary) throw new UserError("No profile is open in the panel.");
    const outFile = sweepPathFor(primary.file, mode);
    if (!containingRoot(outFile, this.host.roots())) {
      throw new UserError(`The sweep would be written to ${outFile}, outside the workspace. Open the folder that holds the profile, or run "lora-drop sweep" from a terminal.`);
    }
    return { profilePath: primary.file, profile: primary.profile, mode, outFile };
  }

  private progress(fraction: number, message: string): void {
    const r = this.running;
    if (!r) return;
    r.fraction = Math.min(1, Math.max(0, fraction));
    r.message = message;
    const now = Date.now();
    if (now - r.sentAt < PROGRESS_INTERVAL_MS && r.fraction < 1) return;
    r.sentAt = now;
    this.host.send({ type: "sweepProgress", mode: r.mode, fraction: r.fraction, message });
  }
}
