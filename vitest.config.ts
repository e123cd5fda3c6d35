import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Builds dist/ once so test/e2e can spawn the compiled CLI.
    globalSetup: ['test/e2e/globalSetup.ts'],
  },
});
