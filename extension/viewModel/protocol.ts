/**
 * The one typed protocol between the extension host and the LoRA-drop panel (webview).
 *
 * Both sides import this file, so it must stay free of `vscode` and of DOM types. Every message that crosses
 * the boundary is validated on arrival with parseHostMessage / parseWebviewMessage; a side acts only on what
 * these return. Handshake: the webview posts `ready` once its listeners are installed; the host sends data
 * only after that (and again after every `ready`, since a hidden-then-revived webview starts empty).
 */
import type { ProfileFile } from "../core/importance/profileSchema";
import { PRUNE_MODES, type PruneMode } from "../core/adapter/dropRecord";
import {
  isArrayOf,
  isBoundedString,
  isCount,
  isFiniteNumber,
  isNonNegative,
  isObject,
  isOneOf,
} from "./guards";
import { isProfileFile } from "./profileGuard";
import { isSweepFile, type SweepFile } from "../core/sweep/sweepSchema";

/** Which of the two profile slots a profile fills: the one being inspected, or the one it is compared with. */
export type ProfileSlot = "primary" | "compare";
/** File kinds the panel can export. */
export type ExportFormat = "csv" | "png" | "svg";

/** The slot values, for validation and UI lists. */
export const PROFILE_SLOTS: readonly ProfileSlot[] = ["primary", "compare"];
/** The export formats, for validation and UI lists. */
export const EXPORT_FORMATS: readonly ExportFormat[] = ["csv", "png", "svg"];
/** Largest export payload, in UTF-16 code units (a 4096-token × 80-layer CSV is about 15 MB). */
export const MAX_EXPORT_CHARS = 64 * 1024 * 1024;
/** Longest free-text field (error messages, paths shown to the user). */
export const MAX_TEXT_CHARS = 8192;

/** The user's `loraDrop.threshold` and `loraDrop.mode` settings: the panel's defaults until the user picks otherwise. */
export interface PanelSettings {
  threshold: number;
  mode: PruneMode;
}

/** Messages the host sends to the panel. */
export type HostToWebview =
  /** The settings the panel starts from; sent after `ready` (before any profile) and whenever they change. */
  | ({ type: "settings" } & PanelSettings)
  /** A profile to show (slot "primary") or to compare against (slot "compare"). `sourcePath` is for display only. */
  | { type: "profile"; slot: ProfileSlot; profile: ProfileFile; sourcePath: string }
  /** Forget the comparison profile. */
  | { type: "clearCompare" }
  /** One training step finished; the panel appends it to the live loss curve. A step ≤ the last one starts a new run. */
  | { type: "trainProgress"; step: number; totalSteps: number; loss: number; lr: number; tokensPerSecond: number }
  /** Training ended; `message` explains a failure or cancellation. */
  | { type: "trainDone"; outcome: "completed" | "cancelled" | "failed"; message?: string }
  /** The answer to an `applyPrune` request, matched by `requestId`. */
  | {
      type: "pruneResult";
      requestId: number;
      threshold: number;
      mode: PruneMode;
      keptLayers: number[];
      paramsBefore: number;
      paramsAfter: number;
      outputPath: string;
    }
  /** An export was written (`savedPath`) or the user cancelled the save dialog (`savedPath` absent). */
  | { type: "exportDone"; requestId: number; savedPath?: string }
  /** A sweep of the primary profile's thresholds (one per mode), measured before or loaded from beside the profile. */
  | { type: "sweep"; sweep: SweepFile; sourcePath: string }
  /** Forget the sweeps (a new primary profile has none yet). */
  | { type: "clearSweeps" }
  /** An evaluation of the thresholds in `mode` is running: `fraction` done, in [0, 1]. */
  | { type: "sweepProgress"; mode: PruneMode; fraction: number; message: string }
  /** The evaluation ended; `message` explains a failure or cancellation. */
  | { type: "sweepDone"; mode: PruneMode; outcome: "completed" | "cancelled" | "failed"; message?: string }
  /** Something failed on the host; `requestId` names the request it answers, if any. */
  | { type: "error"; message: string; requestId?: number };

/** Messages the panel sends to the host. */
export type WebviewToHost =
  /** The panel's listeners are installed; the host may now send data. */
  | { type: "ready" }
  /** Prune the primary profile's adapter with LoRA-drop at `threshold` (in (0, 1]) and `mode`. */
  | { type: "applyPrune"; requestId: number; threshold: number; mode: PruneMode }
  /** Save `content` (CSV/SVG text or a PNG data URL) under the suggested base name `fileName`. */
  | { type: "export"; requestId: number; format: ExportFormat; fileName: string; content: string }
  /** The user moved the threshold or switched mode; lets host commands prune with the panel's current choice. */
  | { type: "stateChanged"; threshold: number; mode: PruneMode }
  /** Ask the host to let the user pick a second profile for the comparison view. */
  | { type: "pickCompareProfile" }
  /** Measure the loss of the pruned adapter at every threshold of the primary profile, in `mode` ("Evaluate thresholds"). */
  | { type: "evaluateThresholds"; mode: PruneMode }
  /** Stop the running evaluation. */
  | { type: "cancelEvaluation" }
  /** An unexpected error inside the panel, for the host's log. */
  | { type: "webviewError"; message: string };

/** Validates a message received by the webview; returns it typed, or undefined when anything is off. */
export function parseHostMessage(x: unknown): HostToWebview | undefined {
  if (!isObject(x)) return undefined;
  switch (x.type) {
    case "settings":
      if (!isThreshold(x.threshold) || !isOneOf(x.mode, PRUNE_MODES)) return undefined;
      return { type: "settings", threshold: x.threshold, mode: x.mode };
    case "profile":
      if (!isOneOf(x.slot, PROFILE_SLOTS) || !isBoundedString(x.sourcePath, MAX_TEXT_CHARS) || !isProfileFile(x.profile)) return undefined;
      return { type: "profile", slot: x.slot, profile: x.profile, sourcePath: x.sourcePath };
    case "clearCompare":
      return { type: "clearCompare" };
    case "trainProgress": {
      const { step, totalSteps, loss, lr, tokensPerSecond } = x;
      if (!isCount(step) || !isCount(totalSteps) || !isFiniteNumber(loss) || !isFiniteNumber(lr) || !isNonNegative(tokensPerSecond)) return undefined;
      return { type: "trainProgress", step, totalSteps, loss, lr, tokensPerSecond };
    }
    case "trainDone": {
      if (!isOneOf(x.outcome, ["completed", "cancelled", "failed"] as const)) return undefined;
      if (x.message !== undefined && !isBoundedString(x.message, MAX_TEXT_CHARS)) return undefined;
      return x.message === undefined ? { type: "trainDone", outcome: x.outcome } : { type: "trainDone", outcome: x.outcome, message: x.message };
    }
    case "pruneResult": {
      const { requestId, threshold, mode, keptLayers, paramsBefore, paramsAfter, outputPath } = x;
      if (!isCount(requestId) || !isThreshold(threshold) || !isOneOf(mode, PRUNE_MODES)) return undefined;
      if (!isArrayOf(keptLayers, isCount) || !isCount(paramsBefore) || !isCount(paramsAfter) || !isBoundedString(outputPath, MAX_TEXT_CHARS)) return undefined;
      return { type: "pruneResult", requestId, threshold, mode, keptLayers, paramsBefore, paramsAfter, outputPath };
    }
    case "exportDone": {
      if (!isCount(x.requestId)) return undefined;
      if (x.savedPath !== undefined && !isBoundedString(x.savedPath, MAX_TEXT_CHARS)) return undefined;
      return x.savedPath === undefined ? { type: "exportDone", requestId: x.requestId } : { type: "exportDone", requestId: x.requestId, savedPath: x.savedPath };
    }
    case "sweep":
      if (!isBoundedString(x.sourcePath, MAX_TEXT_CHARS) || !isSweepFile(x.sweep)) return undefined;
      return { type: "sweep", sweep: x.sweep, sourcePath: x.sourcePath };
    case "clearSweeps":
      return { type: "clearSweeps" };
    case "sweepProgress": {
      const { mode, fraction, message } = x;
      if (!isOneOf(mode, PRUNE_MODES) || !isFiniteNumber(fraction) || fraction < 0 || fraction > 1 || !isBoundedString(message, MAX_TEXT_CHARS)) return undefined;
      return { type: "sweepProgress", mode, fraction, message };
    }
    case "sweepDone": {
      const { mode, outcome, message } = x;
      if (!isOneOf(mode, PRUNE_MODES) || !isOneOf(outcome, ["completed", "cancelled", "failed"] as const)) return undefined;
      if (message !== undefined && !isBoundedString(message, MAX_TEXT_CHARS)) return undefined;
      return message === undefined ? { type: "sweepDone", mode, outcome } : { type: "sweepDone", mode, outcome, message };
    }
    case "error": {
      if (!isBoundedString(x.message, MAX_TEXT_CHARS)) return undefined;
      if (x.requestId !== undefined && !isCount(x.requestId)) return undefined;
      return x.requestId === undefined ? { type: "error", message: x.message } : { type: "error", message: x.message, requestId: x.requestId };
    }
    default:
      return undefined;
  }
}

/** Validates a message received by the host; returns it typed, or undefined when anything is off. */
export function parseWebviewMessage(x: unknown): WebviewToHost | undefined {
  if (!isObject(x)) return undefined;
  switch (x.type) {
    case "ready":
      return { type: "ready" };
    case "applyPrune":
      if (!isCount(x.requestId) || !isThreshold(x.threshold) || !isOneOf(x.mode, PRUNE_MODES)) return undefined;
      return { type: "applyPrune", requestId: x.requestId, threshold: x.threshold, mode: x.mode };
    case "export": {
      const { requestId, format, fileName, content } = x;
      if (!isCount(requestId) || !isOneOf(format, EXPORT_FORMATS) || !isSafeExportName(fileName, format)) return undefined;
      if (!isExportContent(content, format)) return undefined;
      return { type: "export", requestId, format, fileName, content };
    }
    case "stateChanged":
      if (!isThreshold(x.threshold) || !isOneOf(x.mode, PRUNE_MODES)) return undefined;
      return { type: "stateChanged", threshold: x.threshold, mode: x.mode };
    case "pickCompareProfile":
      return { type: "pickCompareProfile" };
    case "evaluateThresholds":
      if (!isOneOf(x.mode, PRUNE_MODES)) return undefined;
      return { type: "evaluateThresholds", mode: x.mode };
    case "cancelEvaluation":
      return { type: "cancelEvaluation" };
    case "webviewError":
      if (!isBoundedString(x.message, MAX_TEXT_CHARS)) return undefined;
      return { type: "webviewError", message: x.message };
    default:
      return undefined;
  }
}

/** True for a LoRA-drop threshold: a finite number in (0, 1]. Zero would keep no importance mass at all. */
export function isThreshold(x: unknown): x is number {
  return isFiniteNumber(x) && x > 0 && x <= 1;
}

/**
 * True when `name` is a plain file base name ending in the format's extension: no path separators, no "..",
 * no drive letters or stream names (":"), no control characters, not hidden, at most 128 characters.
 * The host joins it to a folder the user picked, so anything that could climb out of that folder is refused.
 */
export function isSafeExportName(name: unknown, format: ExportFormat): name is string {
  if (typeof name !== "string" || name.length === 0 || name.length > 128) return false;
  if (/[/\\:*?"<>|]/.test(name) || name.includes("..") || name.startsWith(".")) return false;
  // Control characters (C0, DEL, C1) and bidi/zero-width format characters could disguise the real extension.
  if (/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/.test(name)) return false;
  if (name.trim() !== name) return false;
  return name.toLowerCase().endsWith(`.${format}`);
}

/** True when `content` fits MAX_EXPORT_CHARS and looks like the format it claims to be. */
export function isExportContent(content: unknown, format: ExportFormat): content is string {
  if (typeof content !== "string" || content.length > MAX_EXPORT_CHARS) return false;
  switch (format) {
    case "csv":
      return true;
    case "png":
      // Only a base64 PNG data URL: the host decodes it and writes the bytes.
      return /^data:image\/png;base64,[A-Za-z0-9+/]+={0,2}$/.test(content);
    case "svg":
      return /^<svg[\s>]/.test(content) && !/<script/i.test(content);
  }
}
