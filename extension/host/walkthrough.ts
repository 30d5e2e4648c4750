/**
 * The first-run walkthrough (`contributes.walkthroughs`): create a demo workspace, profile, read the heatmap,
 * choose T, prune, and optionally train. Each step completes when the extension sets its milestone's context key,
 * so a step is ticked when its outcome happened (a profile was saved), not merely when a button was pressed.
 * Pure data: no `vscode` import, so the manifest test reads it under plain Node.
 */

/** What a user has done, as the walkthrough counts it. */
export type Milestone = "workspaceReady" | "profiled" | "heatmapShown" | "thresholdChosen" | "pruned" | "trained";

/** The context key a milestone sets (true) when it happens. */
export function milestoneContextKey(m: Milestone): string {
  return `loraDrop.walkthrough.${m}`;
}

/** The walkthrough's id inside this extension; VS Code's full id is `<publisher>.<name>#<id>`. */
export const WALKTHROUGH_ID = "firstRun";

/** The walkthrough's full id, as `workbench.action.openWalkthrough` takes it. */
export function walkthroughFullId(pkg: { publisher: string; name: string }): string {
  return `${pkg.publisher}.${pkg.name}#${WALKTHROUGH_ID}`;
}

/** The panel screenshot the heatmap and threshold steps show (committed; produced by the e2e test). */
export const PANEL_IMAGE = "media/panel.png";

/** One step of the walkthrough, as package.json holds it. */
export interface WalkthroughStep {
  id: string;
  title: string;
  description: string;
  media: { markdown: string } | { image: string; altText: string };
  completionEvents: string[];
}

const done = (m: Milestone) => [`onContext:${milestoneContextKey(m)}`];

/** The steps, in order. Links `command:` run the extension's commands. */
export const WALKTHROUGH_STEPS: readonly WalkthroughStep[] = [
  {
    id: "createDemo",
    title: "Create a demo workspace",
    description: "No model at hand? LoRA-drop writes a tiny Llama (with Llama 2's real tokenizer), a LoRA adapter trained on it and a small dataset into a folder you pick, then opens it. Offline, in seconds.\n"
      + "[Create demo workspace](command:loraDrop.createDemo)\n"
      + "Have your own base model, PEFT adapter and dataset? Open the folder that holds them instead.",
    media: { markdown: "media/walkthrough/createDemo.md" },
    completionEvents: done("workspaceReady"),
  },
  {
    id: "profile",
    title: "Profile the adapter",
    description: "Run the model over the dataset and measure how much each layer's LoRA changes the output, token by token. Pick the model, the adapter and the dataset: the workspace's own are listed first.\n"
      + "[Profile LoRA outputs](command:loraDrop.profile)",
    media: { markdown: "media/walkthrough/profile.md" },
    completionEvents: done("profiled"),
  },
  {
    id: "heatmap",
    title: "Read the heatmap",
    description: "Rows are layers, columns are the tokens of one example; the brighter the cell, the more that layer's LoRA moved the output there. The bars add each layer up over all tokens: that is its importance. Hover a cell for its value; pick another example or module above the map.\n"
      + "[Open a saved profile](command:loraDrop.openProfile)",
    media: { image: PANEL_IMAGE, altText: "The LoRA-drop panel: a heatmap of LoRA output per layer and token, importance bars and the cumulative curve with the threshold slider." },
    completionEvents: done("heatmapShown"),
  },
  {
    id: "threshold",
    title: "Choose T",
    description: "LoRA-drop keeps layers, most important first, until their importance adds up to T; all the others share one LoRA. Drag the threshold slider under the curve: the kept layers and the parameter count follow. 0.9 is the paper's default.",
    media: { markdown: "media/walkthrough/threshold.md" },
    completionEvents: done("thresholdChosen"),
  },
  {
    id: "prune",
    title: "Prune",
    description: "Write the pruned adapter next to the source, which is never modified: the kept layers keep their own LoRA, the others share one. Or press Apply drop-and-share in the panel.\n"
      + "[Prune adapter](command:loraDrop.prune)",
    media: { markdown: "media/walkthrough/prune.md" },
    completionEvents: done("pruned"),
  },
  {
    id: "train",
    title: "Train (optional)",
    description: "Fine-tune a new LoRA on the dataset with the loss curve live in the panel, or run the whole method: sample, short LoRA, profile, select, fine-tune with shared layers, and compare with full LoRA.\n"
      + "[Train LoRA adapter](command:loraDrop.train)\n[Run LoRA-drop pipeline](command:loraDrop.runPipeline)",
    media: { markdown: "media/walkthrough/train.md" },
    completionEvents: done("trained"),
  },
];

/** The `contributes.walkthroughs` entry. */
export function walkthroughContribution(): Record<string, unknown>[] {
  return [{
    id: WALKTHROUGH_ID,
    title: "Get started with LoRA-drop",
    description: "From no model at all to a pruned LoRA adapter in two minutes: a demo workspace, a profile, the heatmap, a threshold and a prune.",
    featuredFor: ["**/adapter_config.json"],
    steps: WALKTHROUGH_STEPS,
  }];
}
