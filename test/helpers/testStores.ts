/**
 * The store a test runs on. `CANTBOOK_TEST_STORE=postgres` (the `postgres`
 * project of vitest.config.ts) puts every test that takes its store from
 * {@link tempStore} on the PostgreSQL server named by
 * CANTBOOK_TEST_POSTGRES_URL, in a schema of its own that cleanup drops;
 * otherwise it is a SQLite file in a fresh temp dir. Tests of what only one
 * store has (raw SQLite files, BUSY locks) use {@link tempSqliteStore}.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { EventStore } from '../../src/store/eventStore.js';
import { openPostgresStore } from '../../src/store/postgresEventStore.js';
import { openSqliteStore } from '../../src/store/sqliteEventStore.js';

export type StoreKind = 'sqlite' | 'postgres';

/** The PostgreSQL database tests may create schemas in, or undefined when none is set. */
export const postgresUrl: string | undefined = process.env['CANTBOOK_TEST_POSTGRES_URL'] || undefined;

/** The store kind tests run on in this process. */
export function testStoreKind(): StoreKind {
  const kind = process.env['CANTBOOK_TEST_STORE'] ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`CANTBOOK_TEST_STORE must be sqlite or postgres, not '${kind}'`);
  if (kind === 'postgres' && postgresUrl === undefined) throw new Error('CANTBOOK_TEST_STORE=postgres needs CANTBOOK_TEST_POSTGRES_URL');
  return kind;
}

/**
 * How a child process opens the same store: a SQLite path, or
 * `postgres:<schema>:<url>`. Pass it to {@link openStoreFromSpec}.
 */
export type StoreSpec = string;

/**
 * Store calls this process has made through {@link tempStore}'s handles, and
 * how many have not settled yet. SQLite answers within a turn of the event
 * loop, PostgreSQL over a socket: the test clock waits for these to drain
 * before it calls the runtime settled (test/helpers/testClock.ts).
 */
export const storeActivity = { calls: 0, inFlight: 0 };

/** The store, with every call counted in {@link storeActivity}. */
function counted(store: EventStore): EventStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        storeActivity.calls++;
        storeActivity.inFlight++;
        return result.finally(() => {
          storeActivity.inFlight--;
        });
      };
    },
  });
}

/** Opens the store a {@link StoreSpec} names (for child processes of tests). */
export async function openStoreFromSpec(spec: StoreSpec): Promise<EventStore> {
  if (!spec.startsWith('postgres:')) return openSqliteStore(spec);
  const rest = spec.slice('postgres:'.length);
  const colon = rest.indexOf(':');
  return openPostgresStore(rest.slice(colon + 1), { schema: rest.slice(0, colon), maxConnections: 4 });
}

export interface TestStore {
  kind: StoreKind;
  store: EventStore;
  /** A fresh temp dir for the test's own files (removed by cleanup). */
  dir: string;
  /** What a child process passes to {@link openStoreFromSpec}. */
  spec: StoreSpec;
  /** Another handle on the same store (closed by cleanup). */
  open(): Promise<EventStore>;
  /** Closes `store` and opens the same store again, as a restarted process would. */
  reopen(): Promise<EventStore>;
  /**
   * Runs one SQL statement behind the store's back (`?` placeholders), as an
   * attacker or a bad tool would: both stores have the same table names.
   */
  rawSql(sql: string, ...params: unknown[]): Promise<void>;
  cleanup(): Promise<void>;
}

/** A fresh store of this process's kind ({@link testStoreKind}). */
export async function tempStore(kind: StoreKind = testStoreKind()): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), 'cantbook-test-'));
  const schema = `cantbook_t_${randomBytes(6).toString('hex')}`;
  const spec = kind === 'sqlite' ? join(dir, 'cantbook.db') : `postgres:${schema}:${postgresUrl as string}`;
  const handles: EventStore[] = [];
  const open = async (): Promise<EventStore> => {
    const store = await openStoreFromSpec(spec);
    handles.push(store);
    return counted(store);
  };
  const testStore: TestStore = {
    kind,
    store: await open(),
    dir,
    spec,
    open,
    reopen: async () => {
      await testStore.store.close();
      testStore.store = await open();
      return testStore.store;
    },
    rawSql: async (sql, ...params) => {
      if (kind === 'sqlite') {
        const db = new Database(spec);
        try {
          db.prepare(sql).run(...params);
        } finally {
          db.close();
        }
        return;
      }
      let n = 0;
      await onPostgres(`SET search_path TO "${schema}"; `, sql.replace(/\?/g, () => `$${String(++n)}`), params);
    },
    cleanup: async () => {
      for (const handle of handles) await handle.close();
      if (kind === 'postgres') await dropSchema(schema);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return testStore;
}

/** A real SQLite file in a fresh temp dir, for tests of what only SQLite has; `cleanup` closes it and removes the dir. */
export function tempSqliteStore(): { store: EventStore; path: string; dir: string; cleanup: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'cantbook-test-'));
  const path = join(dir, 'cantbook.db');
  const store = openSqliteStore(path);
  return {
    store,
    path,
    dir,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Drops a test schema (and everything in it). */
export async function dropSchema(schema: string): Promise<void> {
  await onPostgres('', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`, []);
}

async function onPostgres(setup: string, sql: string, params: unknown[]): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    if (setup !== '') await client.query(setup);
    await client.query(sql, params);
  } finally {
    await client.end();
  }
}
