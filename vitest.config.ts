import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * Two projects. `sqlite` runs every test. `postgres` runs again every test
 * that takes its store from test/helpers/testStores.ts (`tempStore(` or
 * `testStoreKind(` in its text), with CANTBOOK_TEST_STORE=postgres: on the
 * server CANTBOOK_TEST_POSTGRES_URL names. It exists only when that URL is set
 * (CI always sets it: .ci/run starts a throwaway cluster).
 */
const postgresUrl = process.env['CANTBOOK_TEST_POSTGRES_URL'];

function storeTests(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.test.ts'))
    .map((file) => join(dir, file))
    .filter((file) => /\btempStore\(|\btestStoreKind\(/.test(readFileSync(file, 'utf8')));
}

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default (one worker less than the cores) is a single worker on a 2-core machine, and most of this
    // suite waits (child processes, leases, a browser, a server): two files at a time halve CI's test step.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // Builds dist/ once so test/e2e can spawn the compiled CLI.
    globalSetup: ['test/e2e/globalSetup.ts'],
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['test/**/*.test.ts'], env: { CANTBOOK_TEST_STORE: 'sqlite' } } },
      ...(postgresUrl === undefined || postgresUrl === ''
        ? []
        : [{ extends: true as const, test: { name: 'postgres', include: storeTests('test'), env: { CANTBOOK_TEST_STORE: 'postgres' } } }]),
    ],
  },
});
