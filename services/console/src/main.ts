// Runs the console alone: `tsx services/console/src/main.ts [flags]` (same flags as spillway).
import { main } from "../../app/src/index.js";

main(process.argv.slice(2), "console").catch((err) => {
  console.error(`spillway-console: failed to start: ${(err as Error).message}`);
  process.exit(1);
});
