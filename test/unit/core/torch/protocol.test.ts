/**
 * The Node side of the torch engine without Python: every stdout line type validated (and what is refused), the
 * launch commands for one process, N local env:// processes, torchrun and accelerate, the interpreter choice, and the
 * tokenised examples file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseTorchLine } from "../../../../extension/core/torch/protocol";
import { launchSpecs } from "../../../../extension/core/torch/launcher";
import { findPython, pythonEnvironment, torchPackageRoot } from "../../../../extension/core/torch/python";
import { writeExamplesFile } from "../../../../extension/core/torch/examplesFile";
import { isLoraDropError } from "../../../../extension/core/util/errors";
import { tmpDir } from "../../../helpers";

const refused = (line: string, what: RegExp) => assert.throws(() => parseTorchLine(line, "python"),
  (e: unknown) => isLoraDropError(e) && e.code === "ENGINE_FAILED" && e.file === "python" && what.test(e.message));

test("protocol lines are validated field by field", () => {
  assert.deepEqual(parseTorchLine('{"type":"progress","step":3,"total":10,"message":"3/10 tokens"}', "p"), { type: "progress", step: 3, total: 10, message: "3/10 tokens" });
  assert.deepEqual(parseTorchLine('{"type":"log","level":"warn","message":"m"}', "p"), { type: "log", level: "warn", message: "m" });
  assert.equal(parseTorchLine('{"type":"step","step":1,"totalSteps":4,"loss":2.5,"lr":0.001,"gradNorm":0.7,"tokensPerSecond":90}', "p").type, "step");
  assert.deepEqual(parseTorchLine('{"type":"error","code":"NUMERICAL","message":"step 2: nan","file":"d.jsonl","field":"step","rank":1}', "p"),
    { type: "error", code: "NUMERICAL", message: "step 2: nan", file: "d.jsonl", field: "step", rank: 1 });
  const profile = parseTorchLine('{"type":"result","command":"profile","device":"cpu","dtype":"float32","seconds":1,"criteria":{"output":{"raw":[1,2],"normsFile":"/t/n"},"weight":{"raw":[3,4]}}}', "p");
  assert.deepEqual(profile.type === "result" && profile.command === "profile" && profile.criteria, { output: { raw: [1, 2], normsFile: "/t/n" }, weight: { raw: [3, 4] } });
  const train = parseTorchLine('{"type":"result","command":"train","device":"cuda","dtype":"bfloat16","tensorsFile":"/t/x","steps":2,"losses":[{"step":1,"loss":3,"lr":0.1}],"tokens":40,"trainableParams":64,"headParams":0,"worldSize":2}', "p");
  assert.equal(train.type === "result" && train.command === "train" && train.worldSize, 2);
  const sets = parseTorchLine('{"type":"result","command":"evaluate-sets","device":"cpu","dtype":"float32","seconds":1,"evaluations":[{"loss":2.5},{"loss":2,"predicted":[1,0,-1]}]}', "p");
  assert.deepEqual(sets.type === "result" && sets.command === "evaluate-sets" && sets.evaluations, [{ loss: 2.5 }, { loss: 2, predicted: [1, 0, -1] }]);

  refused("Loading checkpoint shards: 100%", /wrote a line that is not JSON/);
  refused("[1, 2]", /not an object/);
  refused('{"type":"hello"}', /unknown type "hello"/);
  refused('{"type":"progress","step":"3","total":10}', /"progress" line whose step is not a finite number/);
  refused('{"type":"log","level":"debug","message":"m"}', /level "debug", not one of info, warn/);
  refused('{"type":"error","code":"SEGFAULT","message":"m"}', /unknown error code "SEGFAULT"/);
  refused('{"type":"step","step":1.5,"totalSteps":4,"loss":1,"lr":0,"gradNorm":0,"tokensPerSecond":1}', /step is not a count/);
  refused('{"type":"result","command":"profile","device":"cpu","dtype":"float32","seconds":1,"criteria":{"output":{"raw":[1,null]}}}', /raw with a value that is not a finite number/);
  refused('{"type":"result","command":"profile","device":"cpu","dtype":"float32","seconds":1,"criteria":{"entropy":{"raw":[]}}}', /unknown criterion "entropy"/);
  refused('{"type":"result","command":"evaluate-sets","device":"cpu","dtype":"float32","seconds":1,"evaluations":[{"loss":null}]}', /loss is not a finite number/);
  refused('{"type":"result","command":"train","device":"cpu","dtype":"float32","tensorsFile":"x","steps":1,"losses":[7],"tokens":1,"trainableParams":1,"headParams":0,"worldSize":1}', /losses\[0\] that is not an object/);
});

test("launch commands: one process, N local env:// processes (on one node or several), torchrun and accelerate", async () => {
  const env = { PATH: "/bin" };
  assert.deepEqual(await launchSpecs("py", { kind: "single" }, "/r.json", env), [{ command: "py", args: ["-m", "lora_drop_torch", "/r.json"], env, label: "python", rank: 0 }]);
  const local = await launchSpecs("py", { kind: "local", nprocPerNode: 2, masterPort: 29511 }, "/r.json", env);
  assert.deepEqual(local.map((s) => [s.rank, s.env.RANK, s.env.LOCAL_RANK, s.env.WORLD_SIZE, s.env.MASTER_ADDR, s.env.MASTER_PORT]),
    [[0, "0", "0", "2", "127.0.0.1", "29511"], [1, "1", "1", "2", "127.0.0.1", "29511"]]);
  const free = await launchSpecs("py", { kind: "local", nprocPerNode: 2 }, "/r.json", env);
  assert.ok(Number(free[0]!.env.MASTER_PORT) > 0 && free[0]!.env.MASTER_PORT === free[1]!.env.MASTER_PORT);
  // Node 1 of 2, two processes each: global ranks 2 and 3, local ranks 0 and 1 (local rank 0 answers for the node).
  const node1 = await launchSpecs("py", { kind: "local", nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: "10.0.0.1", masterPort: 29500 }, "/r.json", env);
  assert.deepEqual(node1.map((s) => [s.rank, s.env.RANK, s.env.LOCAL_RANK, s.env.WORLD_SIZE, s.env.MASTER_ADDR, s.env.GROUP_RANK]),
    [[0, "2", "0", "4", "10.0.0.1", "1"], [1, "3", "1", "4", "10.0.0.1", "1"]]);
  const [tr] = await launchSpecs("py", { kind: "torchrun", nprocPerNode: 8, nnodes: 2, nodeRank: 1, masterAddr: "10.0.0.1", masterPort: 29500 }, "/r.json", env);
  assert.deepEqual(tr!.args, ["-m", "torch.distributed.run", "--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "1", "--master_addr", "10.0.0.1", "--master_port", "29500", "-m", "lora_drop_torch", "/r.json"]);
  assert.equal(tr!.rank, undefined, "a launcher's merged output is read as a whole");
  const [acc] = await launchSpecs("py", { kind: "accelerate", nprocPerNode: 4, nnodes: 2, nodeRank: 0, masterAddr: "h", masterPort: 1 }, "/r.json", env, "cuda");
  assert.deepEqual(acc!.args, ["-m", "accelerate.commands.launch", "--num_processes", "8", "--num_machines", "2", "--multi_gpu", "--machine_rank", "0", "--main_process_ip", "h", "--main_process_port", "1", "-m", "lora_drop_torch", "/r.json"]);
});

test("accelerate: --multi_gpu only for several CUDA processes, --cpu for one CPU process; several CPU processes are refused", async () => {
  const env = { PATH: "/bin" };
  const args = async (device: string, nprocPerNode: number) => (await launchSpecs("py", { kind: "accelerate", nprocPerNode }, "/r.json", env, device))[0]!.args.slice(2, -3);
  assert.deepEqual(await args("cuda", 2), ["--num_processes", "2", "--num_machines", "1", "--multi_gpu"]);
  assert.deepEqual(await args("cuda", 1), ["--num_processes", "1", "--num_machines", "1"], "accelerate refuses --multi_gpu for one process");
  assert.deepEqual(await args("cpu", 1), ["--num_processes", "1", "--num_machines", "1", "--cpu"]);
  await assert.rejects(args("cpu", 2), (e: unknown) => isLoraDropError(e) && e.code === "INVALID_ARGUMENT" && /mpirun.*use --launcher local or torchrun/.test(e.message));
  await assert.rejects(args("mps", 2), (e: unknown) => isLoraDropError(e) && /MPS is one device/.test(e.message));
});

test("launches are checked: node rank within the nodes, node 0's address and port for several nodes", async () => {
  const env = { PATH: "/bin" };
  const refusal = (launch: Parameters<typeof launchSpecs>[1], field: string) => assert.rejects(launchSpecs("py", launch, "/r.json", env),
    (e: unknown) => isLoraDropError(e) && e.code === "INVALID_ARGUMENT" && e.field === field);
  await refusal({ kind: "local", nprocPerNode: 0 }, "nproc-per-node");
  await refusal({ kind: "torchrun", nprocPerNode: 1, nnodes: 2, nodeRank: 2, masterAddr: "h", masterPort: 1 }, "node-rank");
  await refusal({ kind: "local", nprocPerNode: 1, nnodes: 2, nodeRank: 1, masterPort: 29500 }, "master-addr");
  await refusal({ kind: "local", nprocPerNode: 1, nnodes: 2, masterAddr: "h" }, "master-port");
  await refusal({ kind: "local", nprocPerNode: 1, masterPort: 70000 }, "master-port");
});

test("the interpreter: explicit choice, else $LORA_DROP_PYTHON, else python3; the package goes first on PYTHONPATH", () => {
  assert.deepEqual(findPython("/opt/py", { LORA_DROP_PYTHON: "/e/py" }), { command: "/opt/py", source: "option" });
  assert.deepEqual(findPython(undefined, { LORA_DROP_PYTHON: "/e/py" }), { command: "/e/py", source: "env" });
  assert.deepEqual(findPython("  ", {}), { command: "python3", source: "path" });
  assert.ok(fs.existsSync(path.join(torchPackageRoot(), "lora_drop_torch", "__main__.py")));
  const env = pythonEnvironment({ PYTHONPATH: "/a" }, { PYTHONPATH: "/b" });
  assert.equal(env.PYTHONPATH, `${torchPackageRoot()}${path.delimiter}/b`);
  assert.equal(env.PYTHONUNBUFFERED, "1");
});

test("the examples file: ids, then label, type ids and loss masks only where they say something", () => {
  const file = path.join(tmpDir(), "e.jsonl");
  writeExamplesFile(file, [
    { ids: [5, 6, 7], tokens: [], special: [], lossMask: [false, true, true], example: 0 },
    { ids: [5, 6, 7], tokens: [], special: [], lossMask: [false, false, true], example: 1, label: 2, typeIds: [0, 0, 1] },
  ]);
  assert.deepEqual(fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l)), [
    { ids: [5, 6, 7] },
    { ids: [5, 6, 7], label: 2, type_ids: [0, 0, 1], loss_mask: [0, 0, 1] },
  ]);
});
