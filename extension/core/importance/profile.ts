/**
 * `profileAdapter`: measures how much each layer's LoRA matters, by the chosen criterion, and returns the profile
 * file's content: `output` (LoRA-drop's ‖s·B·A·x‖² over tokens, output.ts), `gradient` (‖∂L/∂A‖² + ‖∂L/∂B‖²,
 * gradient.ts) or `weight` (‖s·B·A‖_F², weight.ts), on the chosen engine: onnxruntime in this process, or PyTorch
 * + transformers + PEFT in a Python child process (torchProfile.ts), which write the same profile.
 */
import type { RunContext } from "../util/progress";
import type { ProfileOptions } from "./options";
import type { ProfileFile } from "./profileSchema";
import { profileOutput } from "./output";
import { profileGradient } from "./gradient";
import { profileWeight } from "./weight";
import { torchProfile } from "./torchProfile";
import { checkEngineOptions, onnxDevice } from "../torch/engineOptions";

/** Runs a profile on the chosen engine and returns the profile file's content. */
export async function profileAdapter(opts: ProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  if (checkEngineOptions(opts) === "torch") return torchProfile(opts, ctx);
  const onnx = { ...opts, device: onnxDevice(opts.device) };
  switch (opts.criterion ?? "output") {
    case "gradient": return profileGradient(onnx, ctx);
    case "weight": return profileWeight(onnx, ctx);
    default: return profileOutput(onnx, ctx);
  }
}
