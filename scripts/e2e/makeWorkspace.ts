/**
 * Writes the end-to-end test's workspace: a tiny random Llama (with Llama 2's real tokenizer), a PEFT adapter with
 * uneven layer magnitudes, a small dataset, a second adapter whose adapter_model.safetensors is corrupt (for the
 * failure path), and workspace settings that keep the profile to a second of work.
 * Usage: node out/scripts/e2e/makeWorkspace.js WORKSPACE_DIR FIXTURE_JSON
 * FIXTURE_JSON receives the paths and sizes the test checks against, so the test never guesses them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeTinyModel, writeTinyAdapter, writeSyntheticDataset } from "../../extension/core/demo/tinyModel";

/** What the test needs to know about the generated workspace. */
export interface E2eFixture {
  workspace: string;
  modelDir: string;
  adapterDir: string;
  dataFile: string;
  brokenAdapterDir: string;
  /** The workspace-relative folder profiles are saved in (the loraDrop.outputFolder setting). */
  outputFolder: string;
  numLayers: number;
  maxExamples: number;
  maxTokens: number;
  threshold: number;
}

/** Writes the workspace under `workspace` and returns its description. */
export function makeE2eWorkspace(workspace: string): E2eFixture {
  const fx: E2eFixture = {
    workspace,
    modelDir: path.join(workspace, "tiny-llama"),
    adapterDir: path.join(workspace, "my-adapter"),
    dataFile: path.join(workspace, "train.jsonl"),
    brokenAdapterDir: path.join(workspace, "broken-adapter"),
    outputFolder: ".lora-drop",
    // Six layers with the fixture's uneven scales (3, 0.3, 1.5, 0.1, 2.2, 0.6) make T = 0.9 keep some and share
    // others, so the threshold control visibly changes the kept set.
    numLayers: 6,
    maxExamples: 4,
    maxTokens: 24,
    threshold: 0.9,
  };
  fs.mkdirSync(workspace, { recursive: true });
  const cfg = writeTinyModel(fx.modelDir, { numLayers: fx.numLayers, hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 64 });
  writeTinyAdapter(fx.adapterDir, cfg, { targets: ["q_proj", "v_proj"] });
  writeSyntheticDataset(fx.dataFile, { count: 8 });

  // The broken adapter: a valid config, and the same safetensors file cut in half, as an interrupted download
  // leaves it. Its header then promises more data than the file holds.
  writeTinyAdapter(fx.brokenAdapterDir, cfg, { targets: ["q_proj", "v_proj"], seed: 7 });
  const weights = path.join(fx.brokenAdapterDir, "adapter_model.safetensors");
  const bytes = fs.readFileSync(weights);
  fs.writeFileSync(weights, bytes.subarray(0, Math.floor(bytes.length / 2)));

  fs.mkdirSync(path.join(workspace, ".vscode"), { recursive: true });
  const settings = {
    "loraDrop.device": "cpu",
    "loraDrop.maxExamples": fx.maxExamples,
    "loraDrop.maxTokens": fx.maxTokens,
    "loraDrop.threshold": fx.threshold,
    "loraDrop.outputFolder": fx.outputFolder,
    "loraDrop.mode": "share",
  };
  fs.writeFileSync(path.join(workspace, ".vscode", "settings.json"), JSON.stringify(settings, null, 2) + "\n");
  return fx;
}

if (require.main === module) {
  const [workspace, fixtureJson] = process.argv.slice(2);
  if (!workspace || !fixtureJson) {
    console.error("usage: node out/scripts/e2e/makeWorkspace.js WORKSPACE_DIR FIXTURE_JSON");
    process.exit(2);
  }
  const fx = makeE2eWorkspace(path.resolve(workspace));
  fs.writeFileSync(fixtureJson, JSON.stringify(fx, null, 2) + "\n");
}
