// Runs the Kusto front door alone: `tsx services/kusto/src/main.ts [flags]` (same flags as spillway).
import { main } from "../../app/src/index.js";

main(process.argv.slice(2), "kusto").catch((err) => {
  console.error(`spillway-kusto: failed to start: ${(err as Error).message}`);
  process.exit(1);
});
