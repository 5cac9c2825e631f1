import { context, propagation, type Context } from "@opentelemetry/api";
import type { Metadata } from "@grpc/grpc-js";

// Trace context travels in gRPC metadata as W3C traceparent/tracestate, so one export
// run is one trace across processes.

export function injectTraceContext(metadata: Metadata, ctx: Context = context.active()): void {
  propagation.inject(ctx, metadata, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
}

export function extractTraceContext(metadata: Metadata): Context {
  return propagation.extract(context.active(), metadata, {
    get: (carrier, key) => {
      const values = carrier.get(key);
      return values.length ? String(values[0]) : undefined;
    },
    keys: (carrier) => Object.keys(carrier.getMap()),
  });
}
