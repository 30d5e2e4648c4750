/**
 * Opens profiles in the heatmap panel. The panel's "Apply drop-and-share" and "Evaluate thresholds" buttons run
 * the prune and sweep flows it is given, so no command module imports another: the command table wires them together (commands/deps.ts).
 */
import type * as vscode from "vscode";
import type { ProfileFile } from "../../core/importance/profileSchema";
import { ProfilePanel, type PanelRunners } from "../panel";
import type { Services } from "../services";

/** Shows, fills and revives the one heatmap panel. */
export class PanelOpener {
  constructor(private readonly s: Services, private readonly runners: PanelRunners) {}

  /** Reveals the panel (creating it if needed). */
  show(): ProfilePanel {
    return ProfilePanel.createOrShow(this.s, this.runners);
  }

  /** Shows a profile in the panel, in the given slot. */
  open(file: string, profile: ProfileFile, slot: "primary" | "compare"): ProfilePanel {
    const panel = this.show();
    panel.show(file, profile, slot);
    return panel;
  }

  /** The threshold chosen in the open panel for this adapter's profile, if the user moved it there. */
  chosenThreshold(adapterDir: string): number | undefined {
    return ProfilePanel.current?.controller.chosenThreshold(adapterDir);
  }

  /** Restores a panel VS Code kept across a reload. */
  revive(webviewPanel: vscode.WebviewPanel): ProfilePanel {
    return ProfilePanel.revive(webviewPanel, this.s, this.runners);
  }
}
