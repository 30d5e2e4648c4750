/**
 * Colours for canvas drawing, read from VS Code's theme variables (canvas cannot use CSS variables
 * directly), and the colour ramp for magnitudes. Re-read whenever VS Code switches theme.
 */
import { interpolateViridis } from "d3-scale-chromatic";

/** The theme colours the canvases use. */
export interface CanvasTheme {
  background: string;
  foreground: string;
  muted: string;
  kept: string;
  shared: string;
  special: string;
  focus: string;
  hover: string;
  zero: string;
  highContrast: boolean;
  fontFamily: string;
}

/** Reads the current theme's colours from the CSS variables VS Code sets on the page. */
export function readCanvasTheme(): CanvasTheme {
  const style = getComputedStyle(document.body);
  const v = (name: string, fallback: string): string => style.getPropertyValue(name).trim() || fallback;
  const highContrast = document.body.classList.contains("vscode-high-contrast") || document.body.classList.contains("vscode-high-contrast-light");
  return {
    background: v("--vscode-editor-background", "#1e1e1e"),
    foreground: v("--vscode-foreground", "#cccccc"),
    muted: v("--vscode-descriptionForeground", "#9d9d9d"),
    kept: v("--vscode-charts-blue", "#3794ff"),
    // Not disabledForeground: Light Modern makes it half-transparent grey, nearly invisible on white.
    shared: v("--vscode-descriptionForeground", "#9d9d9d"),
    special: v("--vscode-charts-orange", "#d18616"),
    focus: v("--vscode-focusBorder", "#007fd4"),
    hover: v("--vscode-editor-foreground", "#d4d4d4"),
    zero: v("--vscode-editorWidget-background", "#252526"),
    highContrast,
    fontFamily: v("--vscode-font-family", "sans-serif"),
  };
}

/** 256 precomputed RGB triples of the viridis ramp (perceptually uniform and colour-blind safe). */
const RAMP: Uint8ClampedArray = buildRamp();

function buildRamp(): Uint8ClampedArray {
  const out = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const hex = interpolateViridis(i / 255); // "#rrggbb"
    out[i * 3] = parseInt(hex.slice(1, 3), 16);
    out[i * 3 + 1] = parseInt(hex.slice(3, 5), 16);
    out[i * 3 + 2] = parseInt(hex.slice(5, 7), 16);
  }
  return out;
}

/** Writes the ramp colour for position t ∈ [0, 1] into `out` at byte offset `at` (RGBA). */
export function writeRampColor(t: number, out: Uint8ClampedArray, at: number): void {
  const i = Math.round(t * 255) * 3;
  out[at] = RAMP[i] as number;
  out[at + 1] = RAMP[i + 1] as number;
  out[at + 2] = RAMP[i + 2] as number;
  out[at + 3] = 255;
}

/** The ramp colour for position t as a CSS colour string. */
export function rampColor(t: number): string {
  const i = Math.round(Math.min(1, Math.max(0, t)) * 255) * 3;
  return `rgb(${RAMP[i]}, ${RAMP[i + 1]}, ${RAMP[i + 2]})`;
}

/** Parses a CSS colour the browser understands into RGB bytes (used for the "zero" cells of the log scale). */
export function cssColorBytes(color: string): [number, number, number] {
  const ctx = document.createElement("canvas").getContext("2d");
  if (!ctx) return [0, 0, 0];
  ctx.fillStyle = color;
  const parsed = ctx.fillStyle; // normalised to "#rrggbb" or "rgba(…)"
  if (parsed.startsWith("#")) return [parseInt(parsed.slice(1, 3), 16), parseInt(parsed.slice(3, 5), 16), parseInt(parsed.slice(5, 7), 16)];
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(parsed);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

/** Calls `onChange` whenever VS Code switches theme (it rewrites body classes and the html style variables). */
export function watchTheme(onChange: () => void): void {
  const observer = new MutationObserver(() => onChange());
  observer.observe(document.body, { attributes: true, attributeFilter: ["class"] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ["style", "class"] });
}
