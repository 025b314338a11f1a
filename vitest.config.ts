import { defineConfig } from "vitest/config";

// Three projects: `unit` (pure code, no services, fast), `integration` (real services from
// test/infra, brought up once by the globalSetup) and `node` (the same services; the files that
// install the chart on the one real node — the benchmarks' smoke run too — one file at a time: two
// releases at once would both mutate the same pods).
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["{common,webhook,shim,scripts}/**/*.test.ts", "test/unit/**/*.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/unit/**", "test/node/**", "test/bench/**"],
          globalSetup: ["test/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts", "test/bench/**/*.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
