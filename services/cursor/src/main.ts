// Runs the cursor service alone: `tsx services/cursor/src/main.ts [flags]` (same flags as spillway).
import { main } from "../../app/src/index.js";

main(process.argv.slice(2), "cursor").catch((err) => {
  console.error(`spillway-cursor: failed to start: ${(err as Error).message}`);
  process.exit(1);
});
