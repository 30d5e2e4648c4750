/**
 * The panel's view state, persisted with the webview's getState/setState so a hidden or reloaded panel comes
 * back as the user left it. Restored state is untrusted (older versions, other profiles), so it is sanitised
 * field by field and then fitted to the profile on screen.
 */
import type { ProfileFile } from "../core/importance/profileSchema";
import { isThreshold, type PanelSettings } from "./protocol";
import { isBoundedString, isCount, isObject, isOneOf } from "./guards";
import { ALL_MODULES } from "./heatmapData";
import { HEATMAP_ZOOMS, type HeatmapZoom } from "./heatmapLayout";
import type { ScaleKind } from "./valueScale";
import type { PruneMode } from "../core/adapter/dropRecord";
import { PRUNE_MODES } from "../core/adapter/dropRecord";

/** A heatmap cell identified by layer position and token index. */
export interface CellRef {
  row: number;
  col: number;
}

/** Everything the panel remembers between reloads. */
export interface PanelState {
  version: 1;
  /** A module name, or ALL_MODULES for the sum. */
  module: string;
  sequence: number;
  threshold: number;
  mode: PruneMode;
  /** True once the user moved the threshold slider in this panel: the `loraDrop.threshold` setting no longer overrides it. */
  thresholdChosen: boolean;
  /** True once the user picked a mode in this panel: the `loraDrop.mode` setting no longer overrides it. */
  modeChosen: boolean;
  scale: ScaleKind;
  zoom: HeatmapZoom;
  pinned: CellRef | null;
  /** The sequence list's filter text. */
  filter: string;
  /** Comparison view: side by side bars, or the difference. */
  compareView: "sideBySide" | "difference";
}

/** The state of a panel opened for the first time. */
export const DEFAULT_PANEL_STATE: PanelState = {
  version: 1,
  module: ALL_MODULES,
  sequence: 0,
  threshold: 0.9,
  mode: "share",
  thresholdChosen: false,
  modeChosen: false,
  scale: "linear",
  zoom: "fit",
  pinned: null,
  filter: "",
  compareView: "sideBySide",
};

/** Reads whatever getState() returned, keeping valid fields and defaulting the rest. */
export function sanitizeState(raw: unknown): PanelState {
  const s: PanelState = { ...DEFAULT_PANEL_STATE };
  if (!isObject(raw) || raw.version !== 1) return s;
  if (isBoundedString(raw.module, 128) && raw.module.length > 0) s.module = raw.module;
  if (isCount(raw.sequence)) s.sequence = raw.sequence;
  if (isThreshold(raw.threshold)) s.threshold = raw.threshold;
  if (isOneOf(raw.mode, PRUNE_MODES)) s.mode = raw.mode;
  // States saved before these flags existed count a value away from the old default as the user's own choice.
  s.thresholdChosen = typeof raw.thresholdChosen === "boolean" ? raw.thresholdChosen : s.threshold !== DEFAULT_PANEL_STATE.threshold;
  s.modeChosen = typeof raw.modeChosen === "boolean" ? raw.modeChosen : s.mode !== DEFAULT_PANEL_STATE.mode;
  if (isOneOf(raw.scale, ["linear", "log"] as const)) s.scale = raw.scale;
  if ((HEATMAP_ZOOMS as readonly unknown[]).includes(raw.zoom)) s.zoom = raw.zoom as HeatmapZoom;
  if (isObject(raw.pinned) && isCount(raw.pinned.row) && isCount(raw.pinned.col)) s.pinned = { row: raw.pinned.row, col: raw.pinned.col };
  if (isBoundedString(raw.filter, 200)) s.filter = raw.filter;
  if (isOneOf(raw.compareView, ["sideBySide", "difference"] as const)) s.compareView = raw.compareView;
  return s;
}

/** Fits a state to `profile`: an unknown module becomes "all", an out-of-range sequence or pinned cell is reset. */
export function fitStateToProfile(state: PanelState, profile: ProfileFile): PanelState {
  const s = { ...state };
  if (s.module !== ALL_MODULES && !profile.modules.includes(s.module)) s.module = ALL_MODULES;
  if (s.sequence >= profile.sequences.length) {
    s.sequence = 0;
    s.pinned = null;
  }
  const tokens = profile.sequences[s.sequence]?.tokens.length ?? 0;
  if (s.pinned && (s.pinned.row >= profile.layers.length || s.pinned.col >= tokens)) s.pinned = null;
  return s;
}

/**
 * Adopts the user's settings as the panel's threshold and mode, except where the user already chose otherwise in
 * this panel (its saved state says so): a choice made on screen outlives a later settings change.
 */
export function applySettings(state: PanelState, settings: PanelSettings): PanelState {
  return {
    ...state,
    threshold: state.thresholdChosen ? state.threshold : settings.threshold,
    mode: state.modeChosen ? state.mode : settings.mode,
  };
}
