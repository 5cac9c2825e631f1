// Runs the writer service alone: `tsx services/writer/src/main.ts [flags]` (same flags as spillway).
import { main } from "../../app/src/index.js";

main(process.argv.slice(2), "writer").catch((err) => {
  console.error(`spillway-writer: failed to start: ${(err as Error).message}`);
  process.exit(1);
});
