import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { tsconfigPaths: true },
  test: {
    include: ["libs/**/*.test.ts", "services/**/*.test.ts", "tools/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // .ci/run reads the counts from the JSON report.
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
    // Cross-service suites start real processes; two cores run two at a time well.
    maxWorkers: 2,
  },
});
