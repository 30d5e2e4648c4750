/**
 * A vscode-elements radio group the panel reads and sets, with keyboard use fixed up: the group moves the checked
 * radio on arrow keys without firing `change`, and leaves the Tab stop on the first radio even when the panel
 * checks another one. Here both arrows and clicks (or Space) report the new value, and the Tab stop follows the
 * checked radio, as a native radio group behaves.
 */
import { h } from "./dom";

/** One choice of the group. */
export interface RadioChoice<T extends string> {
  value: T;
  label: string;
}

/** A vscode-radio as the panel touches it. */
type RadioElement = HTMLElement & { checked: boolean; value: string };

/** The group's element and a setter for its value. */
export interface RadioGroup<T extends string> {
  root: HTMLElement;
  /** Checks the radio for `value` (without reporting it) and puts the Tab stop on it. */
  set(value: T): void;
}

/** Builds a radio group; `onChange` gets each value the user picks with the mouse or the keyboard. */
export function radioGroup<T extends string>(name: string, label: string, choices: readonly RadioChoice<T>[], onChange: (value: T) => void, className?: string): RadioGroup<T> {
  const root = h("vscode-radio-group", { ...(className ? { className } : {}), attrs: { "aria-label": label } },
    choices.map((c) => h("vscode-radio", { attrs: { name, value: c.value, label: c.label } })));
  const radios = (): RadioElement[] => Array.from(root.querySelectorAll<RadioElement>("vscode-radio"));
  let current: string | undefined;
  const report = (): void => {
    const checked = radios().find((r) => r.checked);
    const value = choices.find((c) => c.value === checked?.value)?.value;
    if (value === undefined || value === current) return;
    current = value;
    onChange(value);
  };
  root.addEventListener("change", report);
  root.addEventListener("keydown", (e) => {
    // The group's own keydown handler checks the next radio; read the result once it has run.
    if (e.key.startsWith("Arrow")) queueMicrotask(report);
  });
  return {
    root,
    set(value: T): void {
      current = value;
      for (const r of radios()) {
        r.checked = r.value === value;
        r.tabIndex = r.checked ? 0 : -1;
      }
    },
  };
}
