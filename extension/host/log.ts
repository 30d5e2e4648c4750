/**
 * The "LoRA-drop" Output channel, as the engine's Logger. A LogOutputChannel gives timestamps and levels and
 * honours the user's log level setting.
 */
import * as vscode from "vscode";
import type { Logger } from "../core/util/progress";

/** The Output channel and a Logger writing to it. */
export interface HostLog extends Logger {
  channel: vscode.LogOutputChannel;
  error(message: string): void;
  show(): void;
}

/** Creates the channel; dispose it with the extension. */
export function createHostLog(): HostLog {
  const channel = vscode.window.createOutputChannel("LoRA-drop", { log: true });
  return {
    channel,
    info: (m) => channel.info(m),
    warn: (m) => channel.warn(m),
    error: (m) => channel.error(m),
    show: () => channel.show(true),
  };
}
