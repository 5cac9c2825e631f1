// Runs the query service alone: `tsx services/query/src/main.ts [flags]` (same flags as spillway).
import { main } from "../../app/src/index.js";

main(process.argv.slice(2), "query").catch((err) => {
  console.error(`spillway-query: failed to start: ${(err as Error).message}`);
  process.exit(1);
});
