#!/usr/bin/env node
// `npx spillway <command>`: the CLI is TypeScript, which Node 20 does not run; tsx does,
// with the repository's tsconfig (its @spillway/* paths) from whatever folder it is run in.
import { fileURLToPath } from "node:url";

process.env.TSX_TSCONFIG_PATH ??= fileURLToPath(new URL("../../tsconfig.json", import.meta.url));
const { register } = await import("tsx/esm/api");
register();
await import("./cli.ts");
