// Lint enforces the three rings of docs/architecture.md: pure code never reaches
// for I/O, the clock or the database; only the SQLite adapter imports better-sqlite3 and only the
// PostgreSQL adapter imports pg;
// the CLI talks to the library through its public entry point only.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// policy (approval rules) and contracts (ensures.schema checks) are pure too: the runtime calls them with data.
const pureFolders = ['playbook', 'compiler', 'events', 'projections', 'approvals', 'policy', 'contracts'];

const nodeIo = [
  'node:fs', 'node:fs/promises', 'fs', 'fs/promises', 'node:child_process', 'child_process',
  'node:http', 'node:https', 'node:net', 'node:os', 'node:process',
];

const restrict = (paths, patterns) => ({
  'no-restricted-imports': ['error', { paths, patterns }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/peers/**', 'coverage/**', 'machines/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/store/postgresEventStore.ts'],
    rules: restrict([
      { name: 'better-sqlite3', message: 'Only src/store/sqliteEventStore.ts imports better-sqlite3.' },
      { name: 'pg', message: 'Only src/store/postgresEventStore.ts imports pg.' },
    ], []),
  },
  {
    files: pureFolders.map((f) => `src/${f}/**/*.ts`),
    rules: {
      ...restrict(
        [...nodeIo, 'better-sqlite3', 'pg'].map((name) => ({ name, message: 'The pure ring does no I/O.' })),
        [{ group: ['**/store/**', '**/adapters/**', '**/runtime/**', '**/cli/**'], message: 'Pure code must not depend on outer rings.' }],
      ),
      'no-restricted-globals': ['error',
        { name: 'process', message: 'The pure ring reads no environment.' },
        { name: 'setTimeout', message: 'Time arrives as data in the pure ring.' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: 'Ids and randomness are injected.' },
        { object: 'Date', property: 'now', message: 'The clock is injected.' },
      ],
    },
  },
  {
    // The fold is the compiler's: projections read it, never the other way round (no import cycle).
    files: ['src/compiler/**/*.ts', 'src/events/**/*.ts', 'src/playbook/**/*.ts'],
    rules: restrict(
      [...nodeIo, 'better-sqlite3', 'pg'].map((name) => ({ name, message: 'The pure ring does no I/O.' })),
      [
        { group: ['**/store/**', '**/adapters/**', '**/runtime/**', '**/cli/**'], message: 'Pure code must not depend on outer rings.' },
        { group: ['**/projections/**'], message: 'Projections derive from the compiler\'s fold; the compiler never imports them.' },
      ],
    ),
  },
  {
    files: ['src/store/**/*.ts'],
    ignores: ['src/store/sqliteEventStore.ts', 'src/store/postgresEventStore.ts'],
    rules: restrict(
      [
        { name: 'better-sqlite3', message: 'Only src/store/sqliteEventStore.ts imports better-sqlite3.' },
        { name: 'pg', message: 'Only src/store/postgresEventStore.ts imports pg.' },
      ],
      [{ group: ['**/runtime/**', '**/cli/**'], message: 'Adapters must not depend on the host ring.' }],
    ),
  },
  {
    files: ['src/store/sqliteEventStore.ts'],
    rules: restrict([{ name: 'pg', message: 'Only src/store/postgresEventStore.ts imports pg.' }], [{ group: ['**/runtime/**', '**/cli/**'], message: 'Adapters must not depend on the host ring.' }]),
  },
  {
    files: ['src/store/postgresEventStore.ts'],
    rules: restrict([{ name: 'better-sqlite3', message: 'Only src/store/sqliteEventStore.ts imports better-sqlite3.' }], [{ group: ['**/runtime/**', '**/cli/**'], message: 'Adapters must not depend on the host ring.' }]),
  },
  {
    files: ['src/adapters/**/*.ts'],
    rules: restrict(
      [
        { name: 'better-sqlite3', message: 'Only src/store/sqliteEventStore.ts imports better-sqlite3.' },
        { name: 'pg', message: 'Only src/store/postgresEventStore.ts imports pg.' },
      ],
      [{ group: ['**/runtime/**', '**/cli/**', '**/store/**'], message: 'Adapters must not depend on the host ring.' }],
    ),
  },
  {
    files: ['src/cli/*.ts'],
    rules: restrict(
      [{ name: 'better-sqlite3', message: 'The CLI uses the public API.' }, { name: 'pg', message: 'The CLI uses the public API.' }],
      [{ group: ['../**', '!../index.js'], message: 'The CLI imports only the public API (src/index.ts).' }],
    ),
  },
  {
    // The web viewer's server sits one folder deeper: the public API and its CLI siblings only.
    files: ['src/cli/ui/*.ts'],
    rules: restrict(
      [{ name: 'better-sqlite3', message: 'The CLI uses the public API.' }, { name: 'pg', message: 'The CLI uses the public API.' }],
      [{ group: ['../../**', '!../../index.js'], message: 'The CLI imports only the public API (src/index.ts).' }],
    ),
  },
  {
    files: ['viewer/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
