/**
 * Free GPU memory, for the default memory budget on a GPU execution provider. onnxruntime exposes no memory query,
 * so NVIDIA GPUs are asked through `nvidia-smi` (installed with the driver); elsewhere the answer is unknown and the
 * budget falls back to host memory alone.
 */
import { spawnSync } from "node:child_process";

/** Free memory of the first NVIDIA GPU in bytes, or undefined where `nvidia-smi` is missing or says nothing usable. */
export function nvidiaFreeMemory(command = process.env.LORA_DROP_NVIDIA_SMI ?? "nvidia-smi"): number | undefined {
  const r = spawnSync(command, ["--query-gpu=memory.free", "--format=csv,noheader,nounits"], { encoding: "utf8", timeout: 5000 });
  if (r.status !== 0 || typeof r.stdout !== "string") return undefined;
  const mib = Number(r.stdout.trim().split("\n")[0]);
  return Number.isFinite(mib) && mib > 0 ? mib * 1024 * 1024 : undefined;
}
