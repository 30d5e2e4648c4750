/**
 * Entry point of the LoRA-drop panel (bundled to dist/webview/main.js). Registers the UI components, builds
 * the panel, then posts `ready` so the host starts sending data.
 */
import "./elements";
import { LoraDropPanel } from "./app";
import { connectToHost } from "./vscodeApi";

const host = connectToHost();
const mount = document.getElementById("app");

// Unexpected errors go to the host's log: a webview's console is out of the user's sight.
window.addEventListener("error", (e) => host.post({ type: "webviewError", message: String(e.message).slice(0, 2000) }));
window.addEventListener("unhandledrejection", (e) => host.post({ type: "webviewError", message: String(e.reason).slice(0, 2000) }));

if (mount) {
  new LoraDropPanel(mount, host);
  host.post({ type: "ready" });
} else {
  host.post({ type: "webviewError", message: "The panel HTML has no #app element." });
}
