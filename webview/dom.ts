/**
 * A tiny element builder. Text goes in through textContent only: there is deliberately no way to pass HTML,
 * because token strings and file names are untrusted.
 */

/** Attributes and text for a new element. */
export interface ElementSpec {
  className?: string;
  text?: string;
  attrs?: Record<string, string>;
}

/** Creates an HTML element with the given class, text (as textContent), attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, spec?: ElementSpec, children?: (Node | string)[]): HTMLElementTagNameMap[K];
/** Creates a custom element (e.g. a vscode-elements component) the same way. */
export function h(tag: string, spec?: ElementSpec, children?: (Node | string)[]): HTMLElement;
export function h(tag: string, spec: ElementSpec = {}, children: (Node | string)[] = []): HTMLElement {
  const el = document.createElement(tag);
  if (spec.className) el.className = spec.className;
  if (spec.text !== undefined) el.textContent = spec.text;
  for (const [name, value] of Object.entries(spec.attrs ?? {})) {
    // Event-handler attributes would be code; refuse them outright.
    if (/^on/i.test(name)) throw new Error(`h(): refusing event-handler attribute ${name}`);
    el.setAttribute(name, value);
  }
  for (const child of children) el.append(child);
  return el;
}

/** Replaces all children of `parent` with `children`. */
export function replaceChildren(parent: Element, ...children: (Node | string)[]): void {
  parent.replaceChildren(...children);
}
