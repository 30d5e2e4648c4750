/**
 * Tokenisation with the model's own tokenizer.json through @huggingface/tokenizers (pure JS, offline).
 */
import * as fs from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
import { LoraDropError } from "./errors";

/** A tokenizer loaded from a model folder. */
export class TextTokenizer {
  private readonly specialIds: Set<number>;

  private constructor(private readonly tok: Tokenizer, readonly file: string) {
    this.specialIds = new Set([...tok.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
  }

  /** Loads tokenizer.json (and tokenizer_config.json when present). */
  static load(tokenizerFile: string, configFile?: string): TextTokenizer {
    let json: unknown;
    let cfg: unknown = {};
    try {
      json = JSON.parse(fs.readFileSync(tokenizerFile, "utf8"));
      if (configFile) cfg = JSON.parse(fs.readFileSync(configFile, "utf8"));
    } catch (e) {
      throw new LoraDropError("TOKENIZER_MISSING", `cannot read the tokenizer: ${(e as Error).message}`, tokenizerFile);
    }
    try {
      return new TextTokenizer(new Tokenizer(json as object, cfg as object), tokenizerFile);
    } catch (e) {
      throw new LoraDropError("TOKENIZER_MISSING", `not a tokenizer this tool can load: ${(e as Error).message}`, tokenizerFile);
    }
  }

  /** Token ids and strings of a text. */
  encode(text: string, addSpecialTokens: boolean): { ids: number[]; tokens: string[] } {
    const e = this.tok.encode(text, { add_special_tokens: addSpecialTokens });
    return { ids: e.ids, tokens: e.tokens };
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
    return this.tok.decode(ids);
  }
}
