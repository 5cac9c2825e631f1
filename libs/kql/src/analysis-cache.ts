import { LRUCache } from "lru-cache";
import type { KqlSchema } from "./kql-schema.js";

/** Texts whose analyses are kept, most recently asked first. */
export const ANALYSES_KEPT = 256;

/**
 * The parser's analyses of the texts asked for most recently, by schema and text. Microsoft's
 * Kusto.Language takes about 80 ms here to parse any management command (its partial parser
 * tries every command it knows), a query a few: the same command with the same tables is read
 * once, and a console or a script that repeats `.show continuous-exports` does not pay for it
 * each time. An analysis that throws is not kept.
 */
export class AnalysisCache<A extends object> {
  private readonly kept: LRUCache<string, A>;

  constructor(max = ANALYSES_KEPT) {
    this.kept = new LRUCache<string, A>({ max });
  }

  of(text: string, schema: KqlSchema, analyze: () => A): A {
    const key = `${JSON.stringify(schema)}\n${text}`;
    let analysis = this.kept.get(key);
    if (analysis === undefined) {
      analysis = analyze();
      this.kept.set(key, analysis);
    }
    return analysis;
  }
}
