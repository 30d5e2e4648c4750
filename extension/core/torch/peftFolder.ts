/**
 * The adapter folder PEFT is given. A standard PEFT folder is passed as it is; the compact LoRA-drop form, whose
 * shared pair PEFT would not find under each layer's keys, is first written out as a standard PEFT copy in the
 * run's work folder (the same writer as every adapter, so the copy holds exactly the values the onnx engine reads).
 */
import * as path from "node:path";
import { type Adapter, writeAdapter } from "../adapter/peftAdapter";

/** A folder PEFT's from_pretrained loads for `adapter`: its own, or a PEFT copy under `work` named `name`. */
export async function peftFolderFor(adapter: Adapter, work: string, name = "adapter"): Promise<string> {
  if (adapter.loraDrop?.format !== "compact") return path.resolve(adapter.dir);
  const copy = path.join(work, name);
  await writeAdapter(copy, adapter.config, adapter.loras, { format: "peft" });
  return copy;
}
