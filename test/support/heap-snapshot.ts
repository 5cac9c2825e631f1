import { readFileSync } from "node:fs";

/**
 * How many JavaScript objects and closures a V8 heap snapshot (`.heapsnapshot`, as
 * `node --heapsnapshot-signal` writes it) holds, by constructor: what a leak makes grow.
 * Compiled code, strings and V8's own hidden objects are left out: they grow for a while as
 * a process warms up, leak or not.
 */
export function objectCounts(file: string): Map<string, number> {
  const snapshot = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const [type, name, stride] = [fields.indexOf("type"), fields.indexOf("name"), fields.length];
  const counts = new Map<string, number>();
  for (let i = 0; i < snapshot.nodes.length; i += stride) {
    const kind = types[snapshot.nodes[i + type]!]!;
    if (kind !== "object" && kind !== "closure") continue;
    const key = `${kind} ${snapshot.strings[snapshot.nodes[i + name]!]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** What grew from `before` to `after`, by how many. */
export function growth(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const grown = new Map<string, number>();
  for (const [key, n] of after) if (n > (before.get(key) ?? 0)) grown.set(key, n - (before.get(key) ?? 0));
  return grown;
}
