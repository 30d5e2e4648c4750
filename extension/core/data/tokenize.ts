/**
 * Tokenisation with the model's own tokenizer.json through @huggingface/tokenizers (pure JS, offline). The files
 * are read and checked by tokenizerFile.ts first, and their patterns and inserted texts by tokenizerBudget.ts;
 * whatever the library still throws (an unknown normalizer, a regex it cannot compile) becomes a TOKENIZER_INVALID
 * error naming tokenizer.json. Building the tokenizer and every encode run under a time limit, so a pattern that
 * backtracks on some text stops the run with an error instead of hanging it.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { LoraDropError } from "../util/errors";
import { fail, readTokenizerJson } from "./tokenizerFile";
import { BUILD_TIME_LIMIT_MS, checkTokenizerBudget, ENCODE_TIME_LIMIT_MS, MAX_TEXT_EXPANSION } from "./tokenizerBudget";
import { runWithTimeLimit, TIMED_OUT } from "../util/safeRegex";

/** A tokenizer loaded from a model folder. */
export class TextTokenizer {
  private readonly specialIds: Set<number>;

  private constructor(private readonly tok: Tokenizer, readonly file: string) {
    this.specialIds = new Set([...tok.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
  }

  /** Loads tokenizer.json (and tokenizer_config.json when present), and tokenises a probe text with it. */
  static load(tokenizerFile: string, configFile?: string): TextTokenizer {
    const json = readTokenizerJson(tokenizerFile, "tokenizer");
    checkTokenizerBudget(tokenizerFile, json);
    const cfg = configFile ? readTokenizerJson(configFile, "config") : {};
    let t: TextTokenizer;
    try {
      // The library normalises every added token while it builds: a bad pattern would run here first.
      const built = runWithTimeLimit(() => new Tokenizer(json, cfg), BUILD_TIME_LIMIT_MS);
      if (built === TIMED_OUT) return fail(tokenizerFile, `building the tokenizer took more than ${BUILD_TIME_LIMIT_MS} ms (a normalizer or pattern that never finishes)`);
      t = new TextTokenizer(built, tokenizerFile);
    } catch (e) {
      if (e instanceof LoraDropError) throw e;
      return fail(tokenizerFile, `not a tokenizer this tool can load (${(e as Error).message})`);
    }
    // A configuration the library accepts can still fail on first use; better here, naming the file, than later.
    t.encode("Hello world, 123.", true);
    return t;
  }

  /** Token ids and strings of a text. */
  encode(text: string, addSpecialTokens: boolean): { ids: number[]; tokens: string[] } {
    return this.guard("tokenise", () => {
      const e = this.tok.encode(text, { add_special_tokens: addSpecialTokens });
      return { ids: e.ids, tokens: e.tokens };
    }, text);
  }

  /** A sentence pair through the tokenizer's pair template, with its token type ids. */
  encodePair(text: string, pair: string): { ids: number[]; tokens: string[]; typeIds: number[] } {
    return this.guard("tokenise", () => {
      const e = this.tok.encode(text, { text_pair: pair, add_special_tokens: true, return_token_type_ids: true });
      return { ids: e.ids, tokens: e.tokens, typeIds: e.token_type_ids ?? e.ids.map(() => 0) };
    }, text + pair);
  }

  /** The token string of an id (or `<id>` when the vocabulary has none). */
  tokenString(id: number): string {
    return this.tok.id_to_token(id) ?? `<${id}>`;
  }

  /** Whether an id is a special token (BOS, EOS, PAD…). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Decodes ids to text. */
  decode(ids: number[]): string {
    return this.guard("decode", () => this.tok.decode(ids));
  }

  private guard<T extends { ids?: number[] } | string>(what: string, f: () => T, text = ""): T {
    let r: T | typeof TIMED_OUT;
    try {
      r = runWithTimeLimit(f, ENCODE_TIME_LIMIT_MS);
    } catch (e) {
      if (e instanceof LoraDropError) throw e;
      return fail(this.file, `the tokenizer failed to ${what} (${(e as Error).message})`);
    }
    if (r === TIMED_OUT) return fail(this.file, `the tokenizer took more than ${ENCODE_TIME_LIMIT_MS} ms to ${what} ${text.length} characters (a pattern that backtracks on this text)`);
    // A normalizer that inserts text cannot make more tokens than its bound allows.
    if (typeof r === "object" && r.ids && r.ids.length > (text.length + 8) * MAX_TEXT_EXPANSION) {
      return fail(this.file, `the tokenizer made ${r.ids.length} tokens of ${text.length} characters (a normalizer that expands text without bound)`);
    }
    return r;
  }
}
