/**
 * A minimal stand-in for the `vscode` module, so host code runs under plain `node --test`. Importing this file
 * (first, before any host module) makes `require("vscode")` return `fake`. It records what the host shows and
 * answers dialogs from queues the test fills. Only what the host touches is implemented. Not a test itself.
 */
import Module from "node:module";
import * as path from "node:path";

/** A recorded notification. */
export interface Shown {
  kind: "error" | "info" | "warning";
  message: string;
  items: string[];
}

/** A created webview panel. */
export interface FakePanel {
  viewType: string;
  options: { enableScripts?: boolean; localResourceRoots?: FakeUri[] };
  html: string;
  posted: unknown[];
  title: string;
  /** Delivers a message from the page to the host. */
  fromPage(message: unknown): void;
  disposed: boolean;
}

/** A file Uri with the fields the host reads. */
export class FakeUri {
  readonly scheme = "file";
  constructor(readonly fsPath: string) {}
  static file(p: string): FakeUri {
    return new FakeUri(path.resolve(p));
  }
  static joinPath(base: FakeUri, ...parts: string[]): FakeUri {
    return new FakeUri(path.join(base.fsPath, ...parts));
  }
  toString(): string {
    return `file://${this.fsPath}`;
  }
}

class Disposable {
  constructor(private readonly fn: () => void = () => undefined) {}
  dispose(): void {
    this.fn();
  }
}

/** In `fake.inputBoxes`: press the prompt's first button instead of typing a value. */
export const PRESS_BUTTON = "\u0000press-button";

/** An input box as shown: its prompt, button tooltips, and the validation message for the value it ended with. */
export interface ShownPrompt {
  prompt: string;
  buttons: string[];
  validation: unknown;
}

/** What tests read and steer. */
export const fake = {
  /** Input boxes created with createInputBox, as shown. */
  prompts: [] as ShownPrompt[],
  shown: [] as Shown[],
  /** Answers for showErrorMessage/showInformationMessage/showWarningMessage, by message substring; default: dismissed. */
  answers: [] as { match: string; choose: string }[],
  /** Answers for showQuickPick: a function picking an item (undefined: dismissed). */
  quickPicks: [] as ((items: { label: string }[]) => { label: string } | undefined)[],
  inputBoxes: [] as (string | undefined)[],
  /** The value each input box was opened with (what it was prefilled with). */
  inputBoxValues: [] as (string | undefined)[],
  saveDialogs: [] as (string | undefined)[],
  openDialogs: [] as (string[] | undefined)[],
  executed: [] as { command: string; args: unknown[] }[],
  registered: new Map<string, (...args: unknown[]) => unknown>(),
  /** Other extensions, by id (extensions.getExtension), e.g. a fake ms-python.python. */
  extensions: new Map<string, unknown>(),
  settings: {} as Record<string, unknown>,
  /** Listeners of workspace.onDidChangeConfiguration; `changeSettings` calls them. */
  configListeners: new Set<(e: { affectsConfiguration(section: string): boolean }) => void>(),
  /** Changes `fake.settings` and tells the listeners, as VS Code does when the user edits settings. */
  changeSettings(changes: Record<string, unknown>): void {
    Object.assign(this.settings, changes);
    const keys = Object.keys(changes).map((k) => `loraDrop.${k}`);
    for (const l of [...this.configListeners]) l({ affectsConfiguration: (section) => keys.some((k) => k === section || k.startsWith(`${section}.`)) });
  },
  workspaceFolders: [] as string[],
  statusBar: [] as string[],
  logLines: [] as string[],
  /** Webview panels created, with what was posted to them and a way to post from the page. */
  panels: [] as FakePanel[],
  /** Set to cancel the next withProgress's token after `cancelAfterMs`. */
  cancelAfterMs: undefined as number | undefined,
  reset(): void {
    this.prompts = [];
    this.shown = [];
    this.answers = [];
    this.quickPicks = [];
    this.inputBoxes = [];
    this.inputBoxValues = [];
    this.saveDialogs = [];
    this.openDialogs = [];
    this.executed = [];
    this.registered.clear();
    this.extensions.clear();
    this.settings = {};
    this.configListeners.clear();
    this.statusBar = [];
    this.logLines = [];
    this.cancelAfterMs = undefined;
    this.panels = [];
  },
};

function show(kind: Shown["kind"]) {
  return (message: string, ...rest: unknown[]) => {
    const items = rest.filter((r): r is string => typeof r === "string");
    fake.shown.push({ kind, message, items });
    const answer = fake.answers.find((a) => message.includes(a.match));
    return Promise.resolve(answer?.choose);
  };
}

const vscode = {
  Uri: FakeUri,
  Disposable,
  ProgressLocation: { Notification: 15, Window: 10 },
  QuickPickItemKind: { Separator: -1, Default: 0 },
  InputBoxValidationSeverity: { Info: 1, Warning: 2, Error: 3 },
  ThemeIcon: class { constructor(readonly id: string) {} },
  ViewColumn: { Active: -1, Beside: -2, One: 1 },
  ExtensionKind: { UI: 1, Workspace: 2 },
  env: { isTelemetryEnabled: false },
  window: {
    showErrorMessage: show("error"),
    showInformationMessage: show("info"),
    showWarningMessage: show("warning"),
    setStatusBarMessage: (m: string) => {
      fake.statusBar.push(m);
      return new Disposable();
    },
    createOutputChannel: () => ({
      info: (m: string) => fake.logLines.push(`info ${m}`),
      warn: (m: string) => fake.logLines.push(`warn ${m}`),
      error: (m: string) => fake.logLines.push(`error ${m}`),
      show: () => fake.logLines.push("<shown>"),
      dispose: () => undefined,
    }),
    withProgress: async <T>(_opts: unknown, task: (p: { report(v: unknown): void }, token: unknown) => Promise<T>): Promise<T> => {
      const listeners: (() => void)[] = [];
      const token = {
        isCancellationRequested: false,
        onCancellationRequested: (l: () => void) => {
          listeners.push(l);
          return new Disposable();
        },
      };
      if (fake.cancelAfterMs !== undefined) {
        setTimeout(() => {
          token.isCancellationRequested = true;
          listeners.forEach((l) => l());
        }, fake.cancelAfterMs);
      }
      return task({ report: () => undefined }, token);
    },
    showQuickPick: async (items: { label: string }[]) => fake.quickPicks.shift()?.(await items),
    showInputBox: async (options?: { value?: string }) => {
      fake.inputBoxValues.push(options?.value);
      return fake.inputBoxes.shift();
    },
    createInputBox: () => createInputBox(),
    showSaveDialog: async () => {
      const p = fake.saveDialogs.shift();
      return p === undefined ? undefined : FakeUri.file(p);
    },
    showOpenDialog: async () => fake.openDialogs.shift()?.map((p) => FakeUri.file(p)),
    registerWebviewPanelSerializer: () => new Disposable(),
    createWebviewPanel: (viewType: string, title: string, _column: unknown, options: FakePanel["options"]) => {
      const listeners: ((m: unknown) => void)[] = [];
      const disposeListeners: (() => void)[] = [];
      const record: FakePanel = {
        viewType, options, html: "", posted: [], title, disposed: false,
        fromPage: (m) => listeners.forEach((l) => l(m)),
      };
      fake.panels.push(record);
      const webview = {
        cspSource: "https://fake.vscode-cdn.net",
        asWebviewUri: (u: FakeUri) => ({ toString: () => `https://fake.vscode-cdn.net${u.fsPath}` }),
        onDidReceiveMessage: (l: (m: unknown) => void) => {
          listeners.push(l);
          return new Disposable();
        },
        postMessage: async (m: unknown) => {
          record.posted.push(JSON.parse(JSON.stringify(m)));
          return true;
        },
        set html(v: string) {
          record.html = v;
        },
        get html() {
          return record.html;
        },
        set options(v: FakePanel["options"]) {
          record.options = v;
        },
        get options() {
          return record.options;
        },
      };
      return {
        webview,
        visible: true,
        get title() {
          return record.title;
        },
        set title(v: string) {
          record.title = v;
        },
        iconPath: undefined as unknown,
        reveal: () => undefined,
        onDidChangeViewState: () => new Disposable(),
        onDidDispose: (l: () => void) => {
          disposeListeners.push(l);
          return new Disposable();
        },
        dispose: () => {
          if (record.disposed) return;
          record.disposed = true;
          disposeListeners.forEach((l) => l());
        },
      };
    },
  },
  commands: {
    registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => {
      fake.registered.set(id, fn);
      return new Disposable(() => fake.registered.delete(id));
    },
    executeCommand: async (command: string, ...args: unknown[]) => {
      fake.executed.push({ command, args });
      return fake.registered.get(command)?.(...args);
    },
  },
  extensions: {
    getExtension: (id: string) => fake.extensions.get(id),
  },
  workspace: {
    get workspaceFolders() {
      return fake.workspaceFolders.map((p, index) => ({ uri: FakeUri.file(p), name: path.basename(p), index }));
    },
    getConfiguration: () => ({ get: (key: string) => fake.settings[key] }),
    findFiles: async () => [],
    createFileSystemWatcher: () => ({ onDidCreate: () => new Disposable(), onDidDelete: () => new Disposable(), dispose: () => undefined }),
    onDidChangeWorkspaceFolders: () => new Disposable(),
    onDidChangeConfiguration: (listener: (e: { affectsConfiguration(section: string): boolean }) => void) => {
      fake.configListeners.add(listener);
      return new Disposable(() => fake.configListeners.delete(listener));
    },
  },
};

/**
 * An InputBox answered from `fake.inputBoxes` when shown: a string is typed and accepted, PRESS_BUTTON presses
 * the first button, undefined dismisses it.
 */
function createInputBox() {
  const on = { value: [] as ((v: string) => void)[], accept: [] as (() => void)[], button: [] as ((b: unknown) => void)[], hide: [] as (() => void)[] };
  const listen = <T>(list: T[]) => (l: T) => {
    list.push(l);
    return new Disposable();
  };
  const box = {
    title: "", prompt: "", value: "", ignoreFocusOut: false, buttons: [] as { tooltip?: string }[], validationMessage: undefined as unknown,
    onDidChangeValue: listen(on.value), onDidAccept: listen(on.accept), onDidTriggerButton: listen(on.button), onDidHide: listen(on.hide),
    show() {
      fake.inputBoxValues.push(box.value);
      const next = fake.inputBoxes.shift();
      setImmediate(() => {
        if (next === PRESS_BUTTON) {
          fake.prompts.push({ prompt: box.prompt, buttons: box.buttons.map((b) => b.tooltip ?? ""), validation: box.validationMessage });
          on.button.forEach((l) => l(box.buttons[0]));
        } else if (next === undefined) {
          box.hide();
        } else {
          box.value = next;
          on.value.forEach((l) => l(next));
          fake.prompts.push({ prompt: box.prompt, buttons: box.buttons.map((b) => b.tooltip ?? ""), validation: box.validationMessage });
          on.accept.forEach((l) => l());
        }
      });
    },
    hide() {
      on.hide.forEach((l) => l());
    },
    dispose() {},
  };
  return box;
}

// Resolve `vscode` to the fake for every module loaded after this one.
const mod = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const original = mod._resolveFilename;
mod._resolveFilename = function (request: string, ...rest: unknown[]) {
  return request === "vscode" ? "vscode" : original.call(this, request, ...rest);
};
require.cache["vscode"] = { id: "vscode", filename: "vscode", loaded: true, exports: vscode } as unknown as NodeJS.Module;

/**
 * A fake ExtensionContext with in-memory workspace state, and global state that a test may share between two
 * contexts (two windows of one VS Code).
 */
export function fakeExtensionContext(extensionPath: string, storage: string, globalState = new Map<string, unknown>()): unknown {
  const state = new Map<string, unknown>();
  return {
    extensionUri: FakeUri.file(extensionPath),
    globalStorageUri: FakeUri.file(storage),
    subscriptions: [] as { dispose(): void }[],
    workspaceState: {
      get: <T>(key: string, def?: T) => (state.has(key) ? (state.get(key) as T) : def),
      update: async (key: string, value: unknown) => void state.set(key, value),
    },
    globalState: {
      get: <T>(key: string, def?: T) => (globalState.has(key) ? (globalState.get(key) as T) : def),
      update: async (key: string, value: unknown) => void (value === undefined ? globalState.delete(key) : globalState.set(key, value)),
    },
    extension: { packageJSON: { version: "0.0.0-test", publisher: "lora-drop", name: "lora-drop" }, extensionKind: 2 },
  };
}
