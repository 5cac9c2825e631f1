import type { SpillwayConfig } from "@spillway/config";

const HOUR_MS = 3600_000;

/**
 * Says at start-up who may call (SPEC §7). A server opened on purpose with --auth=none
 * says it again every hour, so the log of a long-running process still shows it.
 * Returns what stops the hourly reminder.
 */
export function announceAuth(config: SpillwayConfig, log: (line: string) => void): () => void {
  const { auth } = config;
  if (auth.mode === "jwt") {
    log(`spillway: callers need bearer tokens from ${auth.issuer} for audience ${auth.audience} (principal claim ${auth.principalClaim}); cluster admins: ${auth.clusterAdmins.join(", ") || "none"}`);
    return () => {};
  }
  if (auth.mode === "open") {
    log(`spillway: authentication is off: anyone who can reach ${config.listen} (a loopback address) has every right; set SPILLWAY_AUTH_ISSUER, SPILLWAY_AUTH_AUDIENCE and SPILLWAY_AUTH_JWKS to require tokens`);
    return () => {};
  }
  const warn = () => log(`spillway: WARNING: authentication is off (--auth=none): anyone who can reach ${config.listen} can read, ingest, drop and export everything`);
  warn();
  const timer = setInterval(warn, HOUR_MS);
  timer.unref();
  return () => clearInterval(timer);
}
