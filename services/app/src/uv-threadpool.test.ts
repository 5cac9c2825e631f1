import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const REPO = join(import.meta.dirname, "../../..");

// `npm start`'s command line, with a probe in place of Spillway's entry: the probe starts
// libuv's pool (a file read) and counts the process's threads (Linux's /proc).
describe("npm start's preload of services/app/uv-threadpool.cjs", () => {
  const dir = mkdtempSync(join(tmpdir(), "spillway-uv-"));
  const probe = join(dir, "probe.mjs");
  writeFileSync(
    probe,
    `import { readdirSync } from "node:fs";
     import { readFile } from "node:fs/promises";
     await readFile(${JSON.stringify(probe)});
     console.log(JSON.stringify({ threads: readdirSync("/proc/self/task").length, size: process.env.UV_THREADPOOL_SIZE ?? null }));`,
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const start = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).scripts.start as string;
  async function threadsUnderStart(env: NodeJS.ProcessEnv): Promise<{ threads: number; size: string | null }> {
    const command = start.replace("services/app/src/main.ts", probe);
    expect(command).not.toBe(start);
    const { stdout } = await run("sh", ["-c", `PATH="${join(REPO, "node_modules/.bin")}:$PATH" ${command}`], { cwd: REPO, env });
    return JSON.parse(stdout.trim().split("\n").pop()!);
  }

  it("sizes the pool at 16 threads before it starts, unless the environment says otherwise", async () => {
    const env = { ...process.env };
    delete env.UV_THREADPOOL_SIZE;
    const preloaded = await threadsUnderStart(env);
    const four = await threadsUnderStart({ ...env, UV_THREADPOOL_SIZE: "4" });
    expect(preloaded.size).toBe("16");
    expect(four.size).toBe("4");
    // Twelve more threads: the pool started with the preload's size, not libuv's default.
    expect(preloaded.threads - four.threads).toBe(12);
  });
});
