import { SingleBar } from "cli-progress";

/** The steps of a one-shot export in order (services/scheduler operation-runner.ts), for a bar of steps done. */
const STEPS = ["queued", "plan", "query", "stage", "upload", "commit"];

/**
 * What `export` shows while it follows its operation: on a terminal a bar of the steps done
 * with the current one and the time so far; elsewhere a line each time the step changes.
 */
export function operationProgress(operationId: string, stream: NodeJS.WriteStream = process.stderr) {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  let last = "";
  if (stream.isTTY) {
    const bar = new SingleBar({ stream, format: " {bar} step {value}/{total}: {phase} | {seconds} s", hideCursor: true });
    bar.start(STEPS.length, 0, { phase: "queued", seconds: seconds() });
    return {
      at: (phase: string) => bar.update(Math.max(0, STEPS.indexOf(phase)), { phase, seconds: seconds() }),
      done: (state: string) => {
        bar.update(state === "Completed" ? STEPS.length : bar.getProgress() * STEPS.length, { phase: state, seconds: seconds() });
        bar.stop();
      },
    };
  }
  const line = (text: string) => stream.write(`export ${operationId}: ${text} (${seconds()} s)\n`);
  return {
    at: (phase: string) => {
      if (phase && phase !== last) line((last = phase));
    },
    done: (state: string) => line(state),
  };
}
