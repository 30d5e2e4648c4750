/**
 * The typed bridge to VS Code's webview API: messages out are WebviewToHost only, state is PanelState.
 */
import type { WebviewToHost } from "../extension/viewModel/protocol";

/** The object acquireVsCodeApi() returns (it may be called once per page). */
interface VsCodeWebviewApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare global {
  // Injected by VS Code into every webview (and by the browser test's fake).
  function acquireVsCodeApi(): VsCodeWebviewApi;
}

/** What the panel needs from its host environment. */
export interface HostBridge {
  post(message: WebviewToHost): void;
  loadState(): unknown;
  saveState(state: unknown): void;
}

/** Wraps acquireVsCodeApi(), which VS Code allows to be called only once per page load. */
export function connectToHost(): HostBridge {
  const api = acquireVsCodeApi();
  return {
    post: (message) => api.postMessage(message),
    loadState: () => api.getState(),
    saveState: (state) => api.setState(state),
  };
}
