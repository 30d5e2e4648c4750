/** The sequence picker: a filter box and a keyboard-navigable list of sequence previews (text only). */
import type { ProfileSequence } from "../extension/core/importance/profileSchema";
import { filterSequences, sequencePreview, WORD_START_MARKER, wordStartSegments } from "../extension/viewModel/tokenText";
import { h } from "./dom";

/** At most this many matches are listed; the filter narrows the rest. */
const MAX_LISTED = 200;

/** The sequence list; owns its DOM under `root`. */
export class SequenceList {
  readonly root: HTMLElement;
  private readonly filter: HTMLElement & { value: string };
  private readonly list: HTMLUListElement;
  private readonly count: HTMLParagraphElement;
  private sequences: readonly ProfileSequence[] = [];
  private selected = 0;

  /** Builds the list; `onSelect` gets the chosen index, `onFilter` the filter text (for state). */
  constructor(private readonly onSelect: (index: number) => void, private readonly onFilter: (text: string) => void) {
    this.filter = h("vscode-textfield", { className: "sequence-filter", attrs: { placeholder: "Filter: text or #index", "aria-label": "Filter sequences" } }) as HTMLElement & { value: string };
    this.filter.addEventListener("input", () => {
      this.onFilter(this.filter.value);
      this.render();
    });
    this.list = h("ul", { className: "sequence-list", attrs: { role: "listbox", "aria-label": "Sequences", tabindex: "0" } });
    this.list.addEventListener("keydown", (e) => this.onKey(e));
    this.count = h("p", { className: "sequence-count" });
    this.root = h("div", { className: "sequences" }, [this.filter, this.count, this.list]);
  }

  /** Shows `sequences` with `selected` highlighted and `filterText` in the box. */
  update(sequences: readonly ProfileSequence[], selected: number, filterText: string): void {
    this.sequences = sequences;
    this.selected = selected;
    if (this.filter.value !== filterText) this.filter.value = filterText;
    this.render();
  }

  private matches(): number[] {
    return filterSequences(this.sequences, this.filter.value ?? "");
  }

  private render(): void {
    const matches = this.matches();
    const shown = matches.slice(0, MAX_LISTED);
    this.count.textContent = matches.length > shown.length
      ? `${matches.length} of ${this.sequences.length} sequences match; showing the first ${shown.length}.`
      : `${matches.length} of ${this.sequences.length} sequences`;
    this.list.replaceChildren(
      ...shown.map((i) => {
        const seq = this.sequences[i] as ProfileSequence;
        const item = h("li", { className: i === this.selected ? "selected" : "", attrs: { role: "option", id: `seq-${i}`, "aria-selected": String(i === this.selected), "data-index": String(i) } }, [
          h("span", { className: "seq-index", text: `#${i}` }),
          h("span", { className: "seq-preview" }, previewNodes(seq.tokens)),
          h("span", { className: "seq-length", text: `${seq.tokens.length} tok` }),
        ]);
        item.addEventListener("click", () => this.onSelect(i));
        return item;
      }),
    );
    // The list keeps focus while arrows move the selection; screen readers follow aria-activedescendant.
    if (shown.includes(this.selected)) this.list.setAttribute("aria-activedescendant", `seq-${this.selected}`);
    else this.list.removeAttribute("aria-activedescendant");
  }

  private onKey(e: KeyboardEvent): void {
    const steps: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10, Home: -Infinity, End: Infinity };
    const step = steps[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const matches = this.matches().slice(0, MAX_LISTED);
    const at = matches.indexOf(this.selected);
    const next = matches[Math.min(matches.length - 1, Math.max(0, at + step))];
    if (next !== undefined) this.onSelect(next);
    // The list scrolls with the selection, so the chosen row stays in sight.
    requestAnimationFrame(() => this.list.querySelector(`#seq-${next}`)?.scrollIntoView({ block: "nearest" }));
  }
}

/** The preview as text nodes, with each word-start mark shown as a dimmed marker (the tooltip and CSV keep the real token). */
function previewNodes(tokens: readonly string[]): (Node | string)[] {
  return wordStartSegments(sequencePreview(tokens)).map((seg) =>
    seg.wordStart ? h("span", { className: "word-start", text: WORD_START_MARKER.repeat(Array.from(seg.text).length) }) : seg.text);
}
