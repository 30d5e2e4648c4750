/**
 * `profileAdapter`: measures how much each layer's LoRA matters, by the chosen criterion, and returns the profile
 * file's content: `output` (LoRA-drop's ‖s·B·A·x‖² over tokens, output.ts), `gradient` (‖∂L/∂A‖² + ‖∂L/∂B‖²,
 * gradient.ts), `weight` (‖s·B·A‖_F², weight.ts) or `ablation` (the loss increase without each layer's LoRA, ablation.ts).
 */
import type { RunContext } from "../util/progress";
import type { ProfileOptions } from "./options";
import type { ProfileFile } from "./profileSchema";
import { profileOutput } from "./output";
import { profileGradient } from "./gradient";
import { profileWeight } from "./weight";
import { profileAblation } from "./ablation";

/** Runs a profile and returns the profile file's content. */
export async function profileAdapter(opts: ProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  switch (opts.criterion ?? "output") {
    case "gradient": return profileGradient(opts, ctx);
    case "weight": return profileWeight(opts, ctx);
    case "ablation": return profileAblation(opts, ctx);
    default: return profileOutput(opts, ctx);
  }
}
