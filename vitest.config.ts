import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.{ts,tsx}"],
    // End-to-end tests run the compiled binary; build it once for the run.
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Two cores: each e2e file runs a server, an embedded PostgreSQL and clients.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
