/** The heatmap's colour legend: the ramp with tick values, and the "zero" swatch on a log scale. */
import { compactValue } from "../extension/viewModel/format";
import { scaleTicks, type ValueScale } from "../extension/viewModel/valueScale";
import { h } from "./dom";
import { rampColor, type CanvasTheme } from "./theme";

const WIDTH = 260;
const BAR_HEIGHT = 10;
const HEIGHT = 30;

/** Redraws the legend inside `container` for `scale`. */
export function renderLegend(container: HTMLElement, scale: ValueScale, theme: CanvasTheme, moduleLabel: string): void {
  const canvas = h("canvas", { className: "legend-canvas", attrs: { role: "img" } });
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round((WIDTH + 40) * dpr);
  canvas.height = Math.round(HEIGHT * dpr);
  canvas.style.width = `${WIDTH + 40}px`;
  canvas.style.height = `${HEIGHT}px`;
  const ctx = canvas.getContext("2d");
  const ticks = scaleTicks(scale);
  if (ctx) {
    ctx.scale(dpr, dpr);
    const x0 = 8;
    for (let x = 0; x < WIDTH; x++) {
      ctx.fillStyle = rampColor(x / (WIDTH - 1));
      ctx.fillRect(x0 + x, 2, 1, BAR_HEIGHT);
    }
    ctx.strokeStyle = theme.muted;
    ctx.strokeRect(x0 - 0.5, 1.5, WIDTH + 1, BAR_HEIGHT + 1);
    ctx.fillStyle = theme.foreground;
    ctx.font = `11px ${theme.fontFamily}`;
    ctx.textBaseline = "top";
    ctx.textAlign = "center";
    for (const t of ticks) {
      const x = x0 + t.position * (WIDTH - 1);
      ctx.fillRect(Math.round(x), 2 + BAR_HEIGHT, 1, 4);
      ctx.fillText(compactValue(t.value), x, BAR_HEIGHT + 7);
    }
  }
  const range = `${compactValue(scale.min)} … ${compactValue(scale.max)}`;
  canvas.setAttribute("aria-label", `Colour scale (${scale.kind}) from ${range}`);
  const caption = h("span", { className: "legend-caption", text: `‖LoRA output‖² · ${moduleLabel} · ${scale.kind} scale · range ${range}` });
  const children: Node[] = [canvas];
  if (scale.kind === "log") {
    const swatch = h("span", { className: "legend-zero" }, [h("span", { className: "legend-zero-swatch" }), "0 (no log)"]);
    swatch.querySelector<HTMLElement>(".legend-zero-swatch")?.style.setProperty("background", theme.zero);
    children.push(swatch);
  }
  children.push(caption);
  container.replaceChildren(...children);
}
