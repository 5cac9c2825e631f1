import type { DescService } from "@bufbuild/protobuf";
import { ALL_RIGHTS } from "@spillway/auth";
import type { AccessRule } from "./access-rules.js";
import { CallGuard } from "./call-guard.js";

/** A guard for tests of the rpc plumbing itself: every caller is anonymous with every right. */
export function openGuard(): CallGuard {
  return new CallGuard({ authenticate: async () => "anonymous", grantsOf: async () => ALL_RIGHTS, audit: async () => {}, limits: { query: 1000, ingest: 1000 } });
}

/** Every method of `service` public to any authenticated caller. */
export function everyoneMayCall(service: DescService): Record<string, AccessRule<never>> {
  return Object.fromEntries(service.methods.map((m) => [m.localName, { need: "authenticated" } as const]));
}
