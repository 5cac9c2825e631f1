import parsePrometheusTextFormat from "parse-prometheus-text-format";

/** One metric family of a scrape, as parse-prometheus-text-format reads it (prom2json's shape). */
export interface MetricFamily {
  name: string;
  help: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }>;
}

/** Scrapes a Prometheus endpoint and parses the text format with a parser from npm. */
export async function scrape(url: string): Promise<Map<string, MetricFamily>> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`scrape of ${url} answered ${res.status}`);
  const families = parsePrometheusTextFormat(await res.text()) as MetricFamily[];
  return new Map(families.map((f) => [f.name, f]));
}

/** The value of `name` whose labels include `labels` (undefined when there is none). */
export function sample(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(name);
  const metric = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!metric) return undefined;
  return Number(metric.value ?? metric.count);
}
