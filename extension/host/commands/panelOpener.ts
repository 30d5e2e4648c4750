/**
 * Opens profiles in the heatmap panel, wiring the panel's "Apply drop-and-share" button to the prune flow.
 * Its own module so the profile, open and train commands need not depend on each other.
 */
import type { ProfileFile } from "../../core/profileSchema";
import { ProfilePanel } from "../panel";
import type { Services } from "../services";
import { runPanelPrune } from "./prune";

/** Reveals the panel (creating it if needed). */
export function showPanel(s: Services): ProfilePanel {
  return ProfilePanel.createOrShow(s, (plan) => runPanelPrune(s, plan));
}

/** Shows a profile in the panel, in the given slot. */
export function openInPanel(s: Services, file: string, profile: ProfileFile, slot: "primary" | "compare"): ProfilePanel {
  const panel = showPanel(s);
  panel.show(file, profile, slot);
  return panel;
}

/** Restores a panel VS Code kept across a reload. */
export function revivePanel(s: Services, webviewPanel: import("vscode").WebviewPanel): ProfilePanel {
  return ProfilePanel.revive(webviewPanel, s, (plan) => runPanelPrune(s, plan));
}
