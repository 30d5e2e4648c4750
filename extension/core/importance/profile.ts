/**
 * `profileAdapter`: measures how much each layer's LoRA matters, by the chosen criterion, and returns the profile
 * file's content: `output` (LoRA-drop's ‖s·B·A·x‖² over tokens, output.ts), `gradient` (‖∂L/∂A‖² + ‖∂L/∂B‖²,
 * gradient.ts), `weight` (‖s·B·A‖_F², weight.ts) or `ablation` (the loss increase without each layer's LoRA, ablation.ts),
 * on the chosen engine: onnxruntime in this process, or PyTorch + transformers + PEFT in a Python child process
 * (torchProfile.ts), which write the same profile. `profileToFile` runs one and writes it, for the CLI and the worker.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { RunContext } from "../util/progress";
import type { ProfileOptions } from "./options";
import type { ProfileFile } from "./profileSchema";
import { LoraDropError } from "../util/errors";
import { checkRunPaths } from "../io/outputGuard";
import { checkThreads } from "../runtime/session";
import { writeProfile } from "./profileFile";
import { profileOutput } from "./output";
import { profileGradient } from "./gradient";
import { profileWeight } from "./weight";
import { profileAblation } from "./ablation";
import { torchProfile } from "./torchProfile";
import { checkEngineOptions, onnxDevice } from "../torch/engineOptions";
import { checkEnginePrecision } from "../quant/precision";

/** Runs a profile on the chosen engine and returns the profile file's content. */
export async function profileAdapter(opts: ProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  checkThreads(opts.threads);
  checkProfilePrecision(opts);
  if (checkEngineOptions(opts) === "torch") return torchProfile(opts, ctx);
  const onnx = { ...opts, device: onnxDevice(opts.device) };
  switch (opts.criterion ?? "output") {
    case "gradient": return profileGradient(onnx, ctx);
    case "weight": return profileWeight(onnx, ctx);
    case "ablation": return profileAblation(onnx, ctx);
    default: return profileOutput(onnx, ctx);
  }
}

/**
 * Throws INVALID_ARGUMENT for a precision that is unknown or that the run cannot honour: a quantized precision
 * needs the onnx engine (checkEnginePrecision) and a criterion that runs the base model forward
 * only (output, ablation): `gradient` differentiates through the base weights, which MatMulNBits has no rule for,
 * and `weight` never runs the base model.
 */
export function checkProfilePrecision(opts: Pick<ProfileOptions, "precision" | "engine" | "criterion">): void {
  const precision = checkEnginePrecision(opts);
  if (precision === "fp32") return;
  const bad = (why: string): never => { throw new LoraDropError("INVALID_ARGUMENT", `--precision ${precision} ${why}`, undefined, "precision"); };
  if (opts.criterion === "gradient") bad("cannot run the gradient criterion: its backward pass goes through the base weights, which are differentiated in fp32 only; use --precision fp32");
  if (opts.criterion === "weight") bad("has no effect on the weight criterion, which reads only the adapter; leave --precision out");
}

/** The run's inputs as the output guard sees them. */
export function profileInputs(opts: Pick<ProfileOptions, "modelDir" | "adapterDir" | "dataPath">) {
  return [
    { path: opts.modelDir, role: "the model folder", option: "--model" },
    { path: opts.adapterDir, role: "the adapter folder", option: "--adapter" },
    { path: opts.dataPath, role: "the dataset", option: "--data" },
  ];
}

/**
 * Runs a profile and writes it atomically to `outFile`. Refused before anything runs: an output that is, contains or
 * lies inside one of the run's inputs (OUTPUT_IS_INPUT), and an existing file unless `force`. A missing parent
 * folder is created once the profile is ready.
 */
export async function profileToFile(opts: ProfileOptions, outFile: string, force: boolean, ctx: RunContext = {}): Promise<ProfileFile> {
  checkRunPaths(profileInputs(opts), [{ path: outFile, role: "the profile file", option: "--out" }]);
  checkThreads(opts.threads);
  if (!force && fs.existsSync(outFile)) {
    throw new LoraDropError("OUTPUT_EXISTS", "the profile file already exists; choose another --out or pass --force", outFile);
  }
  const profile = await profileAdapter(opts, ctx);
  try {
    fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  } catch (e) {
    throw new LoraDropError("WRITE_FAILED", `cannot create the folder of the profile (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, outFile);
  }
  writeProfile(outFile, profile);
  return profile;
}
