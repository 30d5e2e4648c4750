/**
 * The options that come with the choice of engine, and their checks. Every entry point (profileAdapter,
 * trainLora, runPipeline) takes the same fields and checks them here first, so a device or an option the chosen
 * engine does not have is one INVALID_ARGUMENT before any model is read, whoever the caller is (CLI, worker, test).
 */
import { LoraDropError } from "../util/errors";
import { DEVICE_CHOICES, type DeviceChoice } from "../runtime/session";
import { TORCH_DEVICES, TORCH_DTYPES, type TorchDevice, type TorchDtype } from "./protocol";
import { checkLaunch, type TorchLaunch } from "./launcher";
import { ENGINE_CHOICES, type EngineChoice, type EngineDevice } from "./engineChoice";

/** The devices of each engine (`webgpu` is onnxruntime's, `mps` is torch's). */
export const DEVICES_OF: Readonly<Record<EngineChoice, readonly EngineDevice[]>> = { onnx: DEVICE_CHOICES, torch: TORCH_DEVICES };

/** The engine fields of a profile, a training and a pipeline. */
export interface EngineOptions {
  /** `onnx` (default): onnxruntime-node in this process; `torch`: PyTorch + transformers + PEFT in a Python child process. */
  engine?: EngineChoice;
  /** torch: the interpreter (else $LORA_DROP_PYTHON, else python3 on PATH). */
  python?: string;
  /** torch: precision of the base model (default float32; LoRA weights stay float32, as PEFT keeps them). */
  dtype?: TorchDtype;
  /** torch: milliseconds from SIGINT to SIGTERM, and from SIGTERM to SIGKILL, on cancel (default 10 000). */
  graceMs?: number;
  /** torch: extra environment variables for the engine's processes. */
  env?: NodeJS.ProcessEnv;
}

/** The fields checkEngineOptions looks at: the engine's, the device, and the options only one engine has. */
export interface EngineFields extends EngineOptions {
  device?: string;
  launch?: TorchLaunch;
  stream?: string;
  prepack?: boolean;
  memoryBudget?: number;
}

/**
 * Checks the engine, the device for that engine and the options that belong to the other engine; returns the
 * engine. Refused: an unknown engine, dtype or launch; `webgpu` with torch and `mps` with onnx; a Python
 * interpreter, a dtype or a multi-process launch with onnx; layer streaming (`on`), its memory budget and
 * prepacking with torch.
 */
export function checkEngineOptions(o: EngineFields): EngineChoice {
  const engine = o.engine ?? "onnx";
  const bad = (field: string, message: string): never => { throw new LoraDropError("INVALID_ARGUMENT", message, undefined, field); };
  if (!(ENGINE_CHOICES as readonly string[]).includes(engine)) bad("engine", `engine must be one of ${ENGINE_CHOICES.join(", ")}, got ${JSON.stringify(engine)}`);
  const device = o.device ?? "auto";
  if (!(DEVICES_OF[engine] as readonly string[]).includes(device)) {
    const other = ENGINE_CHOICES.find((e) => e !== engine && (DEVICES_OF[e] as readonly string[]).includes(device));
    bad("device", `the ${engine} engine runs on ${DEVICES_OF[engine].join(", ")}, not ${JSON.stringify(device)}` + (other ? `; ${device} is the ${other} engine's (choose engine ${other})` : ""));
  }
  if (engine === "onnx") {
    const torchOnly = o.python ? "python" : o.dtype ? "dtype" : o.launch && o.launch.kind !== "single" ? "launch" : undefined;
    if (torchOnly) bad(torchOnly, `${torchOnly} is an option of the torch engine; choose engine torch, or leave it out`);
  } else {
    if (o.dtype !== undefined && !(TORCH_DTYPES as readonly string[]).includes(o.dtype)) bad("dtype", `dtype must be one of ${TORCH_DTYPES.join(", ")}, got ${JSON.stringify(o.dtype)}`);
    if (o.stream === "on") bad("stream", "layer streaming is the onnx engine's; the torch engine holds the whole model on its device (lower the dtype to bfloat16 to halve it)");
    if (o.prepack) bad("prepack", "weight prepacking is the onnx engine's CPU option; the torch engine has none");
    if (o.memoryBudget !== undefined) bad("memoryBudget", "the memory budget bounds the onnx engine's layer streaming; the torch engine holds the whole model on its device");
    if (o.launch) checkLaunch(o.launch);
  }
  return engine;
}

/** The device as the onnx engine names it (after checkEngineOptions accepted it for onnx). */
export function onnxDevice(device: EngineDevice | undefined): DeviceChoice {
  return (device ?? "auto") as DeviceChoice;
}

/** The device as the torch engine names it (after checkEngineOptions accepted it for torch). */
export function torchDevice(device: EngineDevice | undefined): TorchDevice {
  return (device ?? "auto") as TorchDevice;
}
