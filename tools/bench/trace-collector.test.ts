import { describe, expect, it } from "vitest";
import { medianRunTimeline, slowestRunTimelines, type Span } from "./trace-collector.js";

const span = (traceId: string, spanId: string, parentSpanId: string, name: string, startMs: number, durationMs: number): Span => ({ traceId, spanId, parentSpanId, name, startMs, durationMs });

describe("the median run's timeline", () => {
  it("lists the spans of the run of median length by start, indented by depth, from the trace's first span", () => {
    const spans = [
      ...["a", "b", "c"].flatMap((t, i) => [
        span(t, `${t}0`, "", "spillway.catalog.v1.CatalogService/RunContinuousExportNow", 1000 * i, 30),
        span(t, `${t}1`, `${t}0`, "continuous_export.run", 1000 * i + 1, [10, 20, 30][i]!),
      ]),
      span("b", "b2", "b1", "spillway.writer.v1.WriterService/UploadArtifacts", 1005, 4),
    ];
    expect(medianRunTimeline(spans)).toEqual([
      "the median run (20.0 ms), span by span: start offset +duration",
      "     0.0 +30.0 RunContinuousExportNow server span",
      "       1.0 +20.0 run span (total)",
      "         5.0 +4.0 UploadArtifacts (upload to storage)",
    ]);
    expect(medianRunTimeline([])).toEqual([]);
  });
});

describe("the slowest runs' timelines", () => {
  it("lists the longest runs first, each with its own trace's spans", () => {
    const spans = ["a", "b", "c"].flatMap((t, i) => [span(t, `${t}0`, "", "continuous_export.run", 1000 * i, [10, 30, 20][i]!), span(t, `${t}1`, `${t}0`, "spillway.cursor.v1.CursorService/CommitRun", 1000 * i + 2, i + 1)]);
    expect(slowestRunTimelines(spans, 2)).toEqual([
      "slowest run #1 (30.0 ms), span by span: start offset +duration",
      "     0.0 +30.0 run span (total)",
      "       2.0 +2.0 CommitRun",
      "slowest run #2 (20.0 ms), span by span: start offset +duration",
      "     0.0 +20.0 run span (total)",
      "       2.0 +3.0 CommitRun",
    ]);
  });
});
