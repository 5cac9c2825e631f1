// Runs the scheduler service alone: `tsx services/scheduler/src/main.ts [flags]` (same flags as spillway).
import { main } from "../../app/src/index.js";

main(process.argv.slice(2), "scheduler").catch((err) => {
  console.error(`spillway-scheduler: failed to start: ${(err as Error).message}`);
  process.exit(1);
});
