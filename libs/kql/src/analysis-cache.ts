import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { KqlSchema } from "./kql-schema.js";

/** Texts whose analyses are kept, most recently asked first. */
export const ANALYSES_KEPT = 256;
/** What the kept analyses may hold in all, as JSON. */
const KEPT_BYTES = 32 * 1024 * 1024;
/**
 * Longer texts are analyzed every time: an `.ingest inline` carries its records in its text,
 * and is never asked for twice.
 */
const LONGEST_KEPT_TEXT = 16 * 1024;

/**
 * The parser's analyses of the texts asked for most recently, by schema and text (README
 * "Kusto commands"). Microsoft's Kusto.Language takes about 80 ms here to parse any
 * management command (its partial parser tries every command it knows), a query a few: the
 * same command against the same tables is read once, and a script that polls `.show
 * continuous-exports` does not pay for it each time. An analysis that throws is not kept.
 * What `of` returns is the kept object itself: the caller copies it before changing it (the
 * parser's worker sends it with postMessage, which does).
 */
export class AnalysisCache<A extends object> {
  private readonly kept: LRUCache<string, A>;

  constructor(max = ANALYSES_KEPT, maxBytes = KEPT_BYTES) {
    this.kept = new LRUCache<string, A>({ max, maxSize: maxBytes, sizeCalculation: (analysis, key) => key.length + JSON.stringify(analysis).length });
  }

  of(text: string, schema: KqlSchema, analyze: () => A): A {
    if (text.length > LONGEST_KEPT_TEXT) return analyze();
    // A database's schema can be large: each key holds its digest, not a copy.
    const key = `${createHash("sha256").update(JSON.stringify(schema)).digest("base64")}\n${text}`;
    let analysis = this.kept.get(key);
    if (analysis === undefined) {
      analysis = analyze();
      // One larger than the whole budget is not kept (lru-cache refuses it).
      this.kept.set(key, analysis);
    }
    return analysis;
  }
}
