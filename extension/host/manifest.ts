/**
 * The extension's contributions (commands, menus, settings, the walkthrough, activation events) as data: the single source of
 * truth for package.json's `contributes` (written by scripts/syncManifest.mjs) and for the host's defaults.
 * Pure: no `vscode` import, so unit tests can compare it with package.json under plain Node.
 */
import { DEMO_MARKER } from "../core/demo/demoFiles";
import { walkthroughContribution } from "./walkthrough";


/** The ids of every command the extension contributes. */
export type CommandId =
  | "loraDrop.profile"
  | "loraDrop.prune"
  | "loraDrop.openProfile"
  | "loraDrop.runPipeline"
  | "loraDrop.train"
  | "loraDrop.showLog"
  | "loraDrop.createDemo"
  | "loraDrop.getStarted";

/** One contributed command. Titles carry the "LoRA-drop: " prefix themselves so context menus show it too. */
export interface CommandContribution {
  command: CommandId;
  title: string;
}

/** The contributed commands, in palette order. Ids and titles are relied upon by the e2e test. */
export const COMMANDS: readonly CommandContribution[] = [
  { command: "loraDrop.profile", title: "LoRA-drop: Profile LoRA outputs" },
  { command: "loraDrop.prune", title: "LoRA-drop: Prune adapter" },
  { command: "loraDrop.openProfile", title: "LoRA-drop: Open profile" },
  { command: "loraDrop.runPipeline", title: "LoRA-drop: Run LoRA-drop pipeline" },
  { command: "loraDrop.train", title: "LoRA-drop: Train LoRA adapter" },
  { command: "loraDrop.showLog", title: "LoRA-drop: Show log" },
  { command: "loraDrop.createDemo", title: "LoRA-drop: Create demo workspace" },
  { command: "loraDrop.getStarted", title: "LoRA-drop: Get started" },
];

/** The id of the heatmap panel's webview type (also its serializer's activation event). */
export const PANEL_VIEW_TYPE = "loraDrop.panel";

/** The context key holding the workspace's adapter folders (fsPaths), for the Explorer menu's `in` test. */
export const ADAPTER_FOLDERS_CONTEXT_KEY = "loraDrop.adapterFolders";

/**
 * True in the Explorer for an adapter: a folder named like one, a folder the extension found an
 * adapter_config.json in, or one of the adapter's two files. The menu cannot look inside a folder, hence the
 * context key, filled by a file watcher; the name test covers the moment before the first scan ends.
 */
export const ADAPTER_RESOURCE_WHEN = [
  "explorerResourceIsFolder && resourceFilename =~ /adapter|lora/i",
  `explorerResourceIsFolder && resourcePath in ${ADAPTER_FOLDERS_CONTEXT_KEY}`,
  "resourceFilename == adapter_config.json",
  "resourceFilename == adapter_model.safetensors",
].join(" || ");

/** One menu entry. */
export interface MenuItem {
  command: CommandId;
  when?: string;
  group?: string;
}

/** The contributed menus. Palette entries with no `when` are listed anyway so the test sees every command. */
export const MENUS: Readonly<Record<string, readonly MenuItem[]>> = {
  "explorer/context": [
    { command: "loraDrop.profile", when: ADAPTER_RESOURCE_WHEN, group: "loraDrop@1" },
    { command: "loraDrop.prune", when: ADAPTER_RESOURCE_WHEN, group: "loraDrop@2" },
    { command: "loraDrop.openProfile", when: "resourceExtname == .json && !explorerResourceIsFolder", group: "loraDrop@3" },
  ],
  commandPalette: COMMANDS.map((c) => ({ command: c.command })),
};

/** The JSON-schema subset VS Code's configuration contribution understands, as used here. */
export interface SettingSchema {
  type: "string" | "number" | "integer" | "array";
  default: string | number | readonly string[];
  items?: { type: "string" };
  uniqueItems?: boolean;
  minItems?: number;
  enum?: readonly string[];
  enumDescriptions?: readonly string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  /** A regular expression the settings editor checks the value against (no flags, so both cases are spelled out). */
  pattern?: string;
  patternErrorMessage?: string;
  scope?: "window" | "resource" | "machine-overridable";
  markdownDescription: string;
}

/** The sizes `loraDrop.memoryBudget` accepts (as the engine's parseSize: `6G`, `512M`, `1.5GiB`, bytes), or blank. */
export const MEMORY_BUDGET_PATTERN = "^\\s*(\\d+(\\.\\d+)?\\s*[kmgtKMGT]?([iI]?[bB])?\\s*)?$";

/** The contributed settings, keyed by their full name. */
export const SETTINGS = {
  "loraDrop.engine": {
    type: "string",
    default: "onnx",
    enum: ["onnx", "torch"],
    enumDescriptions: [
      "onnxruntime inside VS Code: nothing to install; CPU, WebGPU or CUDA.",
      "PyTorch + transformers + PEFT in Python (the interpreter of `#loraDrop.pythonPath#`): for NVIDIA GPUs, Apple's MPS and large models.",
    ],
    scope: "machine-overridable",
    markdownDescription: "Engine that profiles and trains. `torch` needs Python with torch, transformers and peft installed; see docs/engines.md.",
  },
  "loraDrop.pythonPath": {
    type: "string",
    default: "",
    scope: "machine-overridable",
    markdownDescription: "Python interpreter of the `torch` engine. Empty: the interpreter selected in the Python extension when it is installed, else `python3` on PATH.",
  },
  "loraDrop.dtype": {
    type: "string",
    default: "float32",
    enum: ["float32", "bfloat16", "float16"],
    enumDescriptions: ["Full precision (as the onnx engine).", "Half the memory; NVIDIA Ampere or newer, or the CPU.", "Half the memory; GPUs only."],
    scope: "machine-overridable",
    markdownDescription: "Precision of the base model in the `torch` engine (the LoRA weights stay float32).",
  },
  "loraDrop.device": {
    type: "string",
    default: "auto",
    enum: ["auto", "cuda", "webgpu", "mps", "cpu"],
    enumDescriptions: [
      "onnx: CUDA if its provider is installed, else WebGPU, else CPU. torch: CUDA, else MPS, else CPU.",
      "NVIDIA GPU.",
      "WebGPU (Dawn; Vulkan on Linux); onnx engine only.",
      "Apple GPU (Metal); torch engine only.",
      "CPU.",
    ],
    scope: "machine-overridable",
    markdownDescription: "Where the model runs (`#loraDrop.engine#` decides which devices there are).",
  },
  "loraDrop.memoryBudget": {
    type: "string",
    default: "",
    // The grammar of the engine's parseSize (extension/core/stream/memoryBudget.ts), or empty.
    pattern: MEMORY_BUDGET_PATTERN,
    patternErrorMessage: "A size such as 6G, 1500M or 1.5GiB, or empty for the automatic budget.",
    scope: "machine-overridable",
    markdownDescription: "Memory a model run may use; a model whose float32 weights do not fit is streamed layer by layer within it. " +
      "A size in binary units such as `6G`, `1500M` or `1.5GiB`. Empty: automatic, half the free memory and, on a GPU, at most 80 % of its free memory.",
  },
  "loraDrop.stream": {
    type: "string",
    default: "auto",
    enum: ["auto", "on", "off"],
    enumDescriptions: [
      "Stream when the model's float32 weights do not fit the memory budget.",
      "Always run the model block by block from its files (Llama, Mistral and Qwen2 models).",
      "Never stream: load the whole model.",
    ],
    scope: "machine-overridable",
    markdownDescription: "Layer streaming: run the model a few decoder layers at a time from its files, within `#loraDrop.memoryBudget#`.",
  },
  "loraDrop.precision": {
    type: "string",
    default: "fp32",
    enum: ["fp32", "int8", "int4"],
    enumDescriptions: [
      "The base model as stored (float32 compute).",
      "Weights quantized to 8 bits at load (cached): the fast CPU path, importance within 5e-3 of fp32.",
      "Weights quantized to 4 bits with zero points: least memory; importance within 5e-3 on decoders, 1.4e-2 measured on a tiny BERT.",
    ],
    scope: "machine-overridable",
    markdownDescription: "Precision of the base model's projections in the `onnx` engine when profiling and evaluating thresholds (LoRA weights and the norm taps stay float32). " +
      "Quantized weights are cached beside your other caches (`$LORA_DROP_CACHE/quant`, default `~/.cache/lora-drop/quant`) and are not streamed. The `torch` engine uses `#loraDrop.dtype#`.",
  },
  "loraDrop.threshold": {
    type: "number",
    default: 0.9,
    exclusiveMinimum: 0,
    maximum: 1,
    markdownDescription: "LoRA-drop threshold T: layers are kept, most important first, until their cumulative importance reaches T; the rest share one LoRA.",
  },
  "loraDrop.sampleFraction": {
    type: "number",
    default: 0.1,
    exclusiveMinimum: 0,
    maximum: 1,
    markdownDescription: "Fraction α of the dataset the LoRA-drop pipeline samples (stratified) for its short first training and its profile.",
  },
  "loraDrop.maxExamples": {
    type: "integer",
    default: 64,
    minimum: 1,
    markdownDescription: "Most dataset examples the Profile command runs over (the first ones in the file).",
  },
  "loraDrop.maxTokens": {
    type: "integer",
    default: 128,
    minimum: 1,
    markdownDescription: "Most tokens per example (longer examples are truncated).",
  },
  "loraDrop.outputFolder": {
    type: "string",
    default: ".lora-drop",
    scope: "resource",
    markdownDescription: "Workspace-relative folder where profiles, training runs and pipeline reports are saved.",
  },
  "loraDrop.mode": {
    type: "string",
    default: "share",
    enum: ["share", "drop"],
    enumDescriptions: ["Unimportant layers share one LoRA (the paper's method).", "Unimportant layers lose their LoRA."],
    markdownDescription: "What happens to the layers below the threshold.",
  },
  "loraDrop.outputFormat": {
    type: "string",
    default: "peft",
    enum: ["peft", "compact"],
    enumDescriptions: ["A standard PEFT adapter folder (the shared LoRA repeated under each shared layer).", "The shared LoRA stored once (read by this engine)."],
    markdownDescription: "Format of pruned adapters.",
  },
  "loraDrop.train.rank": {
    type: "integer",
    default: 8,
    minimum: 1,
    markdownDescription: "LoRA rank r of adapters trained from scratch (Train and the pipeline).",
  },
  "loraDrop.train.alpha": {
    type: "number",
    default: 16,
    minimum: 0,
    markdownDescription: "LoRA alpha of adapters trained from scratch; the LoRA output is scaled by alpha / r.",
  },
  "loraDrop.train.targetModules": {
    type: "array",
    items: { type: "string" },
    uniqueItems: true,
    minItems: 1,
    default: ["q_proj", "v_proj"],
    markdownDescription: "Modules that get a LoRA when training from scratch (any of q/k/v/o/gate/up/down_proj).",
  },
  "loraDrop.train.epochs": {
    type: "integer",
    default: 1,
    minimum: 1,
    markdownDescription: "Passes over the dataset when training.",
  },
  "loraDrop.train.learningRate": {
    type: "number",
    default: 0.0002,
    exclusiveMinimum: 0,
    markdownDescription: "Peak learning rate (AdamW, linear decay).",
  },
  "loraDrop.train.batchSize": {
    type: "integer",
    default: 8,
    minimum: 1,
    markdownDescription: "Sequences per optimiser step when training.",
  },
} as const satisfies Record<string, SettingSchema>;

/** A setting's full name. */
export type SettingKey = keyof typeof SETTINGS;

/** The `contributes.configuration` block. */
export function configurationContribution(): { title: string; properties: Record<string, SettingSchema> } {
  return { title: "LoRA-drop", properties: { ...SETTINGS } };
}

/**
 * Activation: commands activate the extension implicitly (VS Code ≥ 1.74); the serializer needs its panel
 * event; a workspace with adapters activates early so the Explorer's adapter-folder context key is ready, and a
 * demo workspace so that the walkthrough goes on in the window the demo command opened.
 */
export const ACTIVATION_EVENTS: readonly string[] = [`onWebviewPanel:${PANEL_VIEW_TYPE}`, "workspaceContains:**/adapter_config.json", `workspaceContains:${DEMO_MARKER}`];

/** Everything package.json's `contributes` holds. */
export function contributes(): Record<string, unknown> {
  return { commands: COMMANDS, menus: MENUS, configuration: configurationContribution(), walkthroughs: walkthroughContribution() };
}
