/**
 * The worker-thread side of threadSession.ts: creates one onnxruntime session from the graph bytes it is given
 * (runtime/session.ts, so the same providers, shard links and options), answers `run` requests with the outputs,
 * and releases the session on `dispose`. Errors travel back as their code and message.
 */
import { parentPort, workerData } from "node:worker_threads";
import type * as Ort from "onnxruntime-node";
import { createSession, ort } from "./session";
import { LoraDropError } from "../util/errors";
import type { ThreadSessionInit, ThreadRequest, ThreadReply, WireError, WireTensor } from "./threadSession";

function wireError(e: unknown): WireError {
  if (e instanceof LoraDropError) {
    const prefix = e.file ? `${e.file}: ` : "";
    return { code: e.code, message: e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message, file: e.file, field: e.field };
  }
  return { message: e instanceof Error ? e.message : String(e) };
}

async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as ThreadSessionInit;
  let session: Ort.InferenceSession;
  try {
    const created = await createSession(init.modelBytes, init.options);
    session = created.session;
    port.postMessage({ kind: "ready", device: created.device } satisfies ThreadReply);
  } catch (e) {
    port.postMessage({ kind: "error", error: wireError(e) } satisfies ThreadReply);
    return;
  }
  port.on("message", (req: ThreadRequest) => {
    void (async () => {
      if (req.kind === "dispose") {
        await session.release();
        port.postMessage({ kind: "disposed" } satisfies ThreadReply);
        port.close();
        return;
      }
      try {
        const rt = ort();
        const feeds: Record<string, Ort.Tensor> = {};
        for (const [name, t] of Object.entries(req.feeds)) feeds[name] = new rt.Tensor(t.type, t.data, t.dims);
        const out = await session.run(feeds, req.fetches);
        const outputs: Record<string, WireTensor> = {};
        const transfer: ArrayBuffer[] = [];
        for (const name of req.fetches) {
          const t = out[name]!;
          // A copy of its own: the output may be a view of memory the session keeps.
          const data = (t.data as Float32Array).slice();
          outputs[name] = { type: "float32", data, dims: [...t.dims] };
          transfer.push(data.buffer as ArrayBuffer);
        }
        port.postMessage({ kind: "result", id: req.id, outputs } satisfies ThreadReply, transfer);
      } catch (e) {
        port.postMessage({ kind: "result", id: req.id, error: wireError(e) } satisfies ThreadReply);
      }
    })();
  });
}

void main();
