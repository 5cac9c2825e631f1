// Runs the catalog service alone: `tsx services/catalog/src/main.ts [flags]` (same flags as spillway).
import { main } from "../../app/src/index.js";

main(process.argv.slice(2), "catalog").catch((err) => {
  console.error(`spillway-catalog: failed to start: ${(err as Error).message}`);
  process.exit(1);
});
