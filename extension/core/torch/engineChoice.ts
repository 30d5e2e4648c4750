/**
 * The names of the two engines and of their devices, pure (the panel's view model reads them through the profile
 * schema). `onnx` (the default) runs in this Node process on onnxruntime-node and needs nothing installed; `torch`
 * runs PyTorch + transformers + PEFT in a Python child process, for GPUs and data-parallel runs. The options that
 * come with the choice, and their checks, are in engineOptions.ts.
 */

/** The engines. */
export const ENGINE_CHOICES = ["onnx", "torch"] as const;
/** One of ENGINE_CHOICES. */
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** Every device either engine runs on (`webgpu` is onnxruntime's, `mps` is torch's; DEVICES_OF says which has which). */
export const ENGINE_DEVICES = ["auto", "cpu", "cuda", "webgpu", "mps"] as const;
/** One of ENGINE_DEVICES. */
export type EngineDevice = (typeof ENGINE_DEVICES)[number];

/** How a run names its engine and device: "onnx cpu", "torch cuda bfloat16" (what profiles, reports and messages say). */
export function engineLabel(engine: EngineChoice, device: string, dtype?: string): string {
  return [engine, device, ...(dtype ? [dtype] : [])].join(" ");
}

/** The engine and device of a run from its device field: the torch engine's say "torch …", the onnx engine's are an execution provider. */
export function runLabel(device: string): string {
  return ENGINE_CHOICES.some((e) => device.startsWith(`${e} `)) ? device : engineLabel("onnx", device);
}
