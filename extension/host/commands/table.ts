/**
 * The command table (rust-analyzer style): one handler per contributed command id, registered in one loop.
 * Each handler is wrapped so that a failure is logged with its details and shown once, as one error
 * notification with a "Show log" action; a cancellation shows nothing but a status bar note.
 */
import * as vscode from "vscode";
import { describeError } from "../errorText";
import { COMMANDS, type CommandId } from "../manifest";
import type { Services } from "../services";
import { openProfileCommand } from "./openProfile";
import { pipelineCommand } from "./pipeline";
import { profileCommand } from "./profile";
import { pruneCommand, runPanelPrune } from "./prune";
import { trainCommand } from "./train";
import { createDemoCommand, openWalkthrough } from "./createDemo";
import { runPanelSweep } from "./sweep";
import type { CommandDeps } from "./deps";
import { PanelOpener } from "./panelOpener";

/** A command handler: receives the raw arguments VS Code passes. */
export type CommandHandler = (args: readonly unknown[]) => unknown;

/** Builds the commands' collaborators: the panel opener runs the prune flow, the prune flow may run a profile. */
export function wireCommands(s: Services): CommandDeps {
  const deps: CommandDeps = {
    panels: new PanelOpener(s, { prune: (plan) => runPanelPrune(s, plan), evaluate: (plan, hooks) => runPanelSweep(s, plan, hooks) }),
    profile: (request) => profileCommand(s, deps, [request]),
  };
  return deps;
}

/** The handlers, keyed by command id; the type makes the table cover exactly the contributed ids. */
export function commandTable(s: Services, deps: CommandDeps = wireCommands(s)): Record<CommandId, CommandHandler> {
  return {
    "loraDrop.profile": (args) => profileCommand(s, deps, args),
    "loraDrop.prune": (args) => pruneCommand(s, deps, args),
    "loraDrop.openProfile": (args) => openProfileCommand(s, deps, args),
    "loraDrop.runPipeline": (args) => pipelineCommand(s, deps, args),
    "loraDrop.train": (args) => trainCommand(s, deps, args),
    "loraDrop.showLog": () => s.log.show(),
    "loraDrop.createDemo": (args) => createDemoCommand(s, args),
    "loraDrop.getStarted": () => openWalkthrough(s),
  };
}

/** Registers every command of the table, each wrapped; returns the registrations to dispose. */
export function registerCommands(s: Services, deps: CommandDeps = wireCommands(s)): vscode.Disposable[] {
  const table = commandTable(s, deps);
  return (Object.entries(table) as [CommandId, CommandHandler][]).map(([id, handler]) => vscode.commands.registerCommand(id, wrapCommand(s, id, handler)));
}

/**
 * Wraps a handler: records start and outcome for the test API, and turns a failure into one notification. The
 * wrapped command resolves to the handler's result, or undefined after a failure (executeCommand callers,
 * like tests, read the outcome from the test API).
 */
export function wrapCommand(s: Services, id: CommandId, handler: CommandHandler): (...args: unknown[]) => Promise<unknown> {
  const title = (COMMANDS.find((c) => c.command === id)?.title ?? id).replace(/^LoRA-drop: /, "");
  return async (...args: unknown[]) => {
    s.test.commandStarted(id);
    try {
      const result = await handler(args);
      s.test.commandFinished(id, "ok");
      return result;
    } catch (e) {
      const { cancelled } = describeError(title, e);
      s.reportError(title, e);
      s.test.commandFinished(id, cancelled ? "cancelled" : "failed");
      return undefined;
    }
  };
}
