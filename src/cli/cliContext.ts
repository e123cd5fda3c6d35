/**
 * What one CLI invocation knows about its surroundings: the global options,
 * the working directory and environment, where the database is (a SQLite file,
 * or a PostgreSQL URL), and the agent dispatcher. Everything is resolved
 * lazily, so a command only fails on the settings it actually needs.
 */
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CantbookError, createDispatcherFromSpec, createSubprocessRunner, DEFAULT_LEASE_MS, exitCodes, openPostgresStore, openSqliteStore } from '../index.js';
import type { AgentDispatcher, DeterministicRunner, EventStore } from '../index.js';
import { CliError, describeError, messageOf } from './cliErrors.js';
import { CONFIG_EXIT_CODE, CONFIG_FILE_NAME, readConfigFile } from './configFile.js';
import type { CliConfig } from './configFile.js';
import { createOutput } from './output.js';
import type { AgentNeed } from './runAgent.js';
import type { Output, TextSink } from './output.js';
import { isPostgresUrl, parsePostgresUrl, scrubSecrets } from './postgresUrl.js';
import type { PostgresUrl } from './postgresUrl.js';
import { createCommandLine, programOf } from './runResult.js';
import type { CommandLine } from './runResult.js';

/** The database used when neither --db, CANTBOOK_DB nor the config file names one. */
export const DEFAULT_DB_PATH = '.cantbook/cantbook.db';

/** The process facts the CLI runs with (injected so tests and embedders can supply their own). */
export interface CliEnvironment {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: TextSink;
  stderr: TextSink;
}

/** Options every command accepts. */
export interface GlobalOptions {
  db?: string;
  json?: boolean;
}

/** Where the database setting came from (first match wins: `--db`, CANTBOOK_DB, the config file, the default). */
export type DatabaseSource = 'flag' | 'env' | 'config' | 'default';

/** The resolved database: a SQLite file or a PostgreSQL URL. */
export type DatabaseLocation = SqliteLocation | PostgresLocation;

interface LocationBase {
  /** What to show as this database: the SQLite file's absolute path, or the PostgreSQL URL without its password. */
  label: string;
  /** The text a printed command must pass as `--db`, or '' when the command needs none (see docs/cli.md). */
  flag: string;
  source: DatabaseSource;
}

/** A SQLite file. */
export interface SqliteLocation extends LocationBase {
  kind: 'sqlite';
  /** Absolute path, or ':memory:'. */
  path: string;
}

/** A PostgreSQL database (`postgres://` or `postgresql://`; never resolved as a file path). */
export interface PostgresLocation extends LocationBase {
  kind: 'postgres';
  url: PostgresUrl;
}

/** One invocation's context. Construct with {@link createCliContext}. */
export interface CliContext {
  readonly out: Output;
  readonly cwd: string;
  /** The config file, read on first use (undefined when there is none). */
  config(): CliConfig | undefined;
  database(): DatabaseLocation;
  /** A command line to print for the user to run next: the same program and database as this invocation. */
  command: CommandLine;
  /**
   * Opens the store read-write, runs `fn`, and closes the store whatever
   * happens. SQLite: on first use it creates the directory (mode 0700) and the
   * database file (mode 0600): run data is its owner's alone. PostgreSQL: the
   * store creates (or migrates) its tables on open. An error never quotes the
   * URL's password.
   */
  withStore<T>(fn: (store: EventStore) => Promise<T>): Promise<T>;
  /**
   * As withStore, for commands that only read. SQLite: the file is opened
   * read-only (so a read-only file or directory works), and nothing is ever
   * created: a missing database is E_STORE_UNAVAILABLE naming the path.
   * PostgreSQL: nothing is created either (openPostgresStore with create:
   * false): a database or schema without a cantbook store is E_STORE_UNAVAILABLE.
   */
  withReadStore<T>(fn: (store: EventStore) => Promise<T>): Promise<T>;
  /**
   * SQLite only: opens the file read-write (creating it as withStore does); the
   * caller closes it. (A PostgreSQL store opened by withReadStore is writable
   * already.) Throws a TypeError for a PostgreSQL database.
   */
  openWritableStore(): EventStore;
  /**
   * The agent for the nodes `need` names (SPEC §7, docs/adr/0010), in this
   * order: `--agent`, the spec the run remembers, the config file's `agent`;
   * with none of them, a stand-in that is never called when no agentic node
   * is left, else E_ADAPTER_INVALID (exit 78) naming the nodes and how to
   * configure an agent. `need` null: not known (an agent is required).
   */
  dispatcher(agentFlag: string | undefined, need: AgentNeed | null): AgentDispatcher;
  /** The subprocess runner for deterministic nodes. */
  runner(): DeterministicRunner;
  /**
   * The lease length for commands that drive runs (SPEC §11): `CANTBOOK_LEASE_MS`
   * when set, else undefined (the library's default, 30 s). Read on first use,
   * so only a driving command refuses a bad value (E_USAGE naming the variable).
   */
  leaseMs(): number | undefined;
}

/** The environment variable that sets the lease length of every driving command. */
export const LEASE_MS_VARIABLE = 'CANTBOOK_LEASE_MS';
/** The shortest lease the library accepts (it renews every third of it). */
const MIN_LEASE_MS = 3;
const USAGE_EXIT_CODE = exitCodes.E_USAGE;

/**
 * Builds the context for one invocation.
 *
 * @example
 * const ctx = createCliContext({ cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr }, { json: true });
 * await ctx.withStore((store) => store.listRuns());
 */
export function createCliContext(environment: CliEnvironment, globals: GlobalOptions): CliContext {
  const out = createOutput({ json: globals.json === true, stdout: environment.stdout, stderr: environment.stderr });
  const { cwd, env } = environment;
  let config: CliConfig | undefined | null = null;
  let location: DatabaseLocation | undefined;

  const readConfig = (): CliConfig | undefined => {
    if (config === null) config = readConfigFile(cwd);
    return config;
  };

  const database = (): DatabaseLocation => {
    if (location) return location;
    const fromEnv = env.CANTBOOK_DB === '' ? undefined : env.CANTBOOK_DB;
    const [given, source, base] =
      globals.db !== undefined
        ? [globals.db, 'flag' as const, cwd]
        : fromEnv !== undefined
          ? [fromEnv, 'env' as const, cwd]
          : readConfig()?.db !== undefined
            ? [readConfig()?.db as string, 'config' as const, dirname(readConfig()?.path as string)]
            : [DEFAULT_DB_PATH, 'default' as const, cwd];
    if (given.trim() === '') throw new CantbookError('E_USAGE', '--db needs a path or a postgres:// URL');
    if (isPostgresUrl(given)) {
      const url = parsePostgresUrl(given);
      location = { kind: 'postgres', url, label: url.display, source, flag: postgresFlag(url, source) };
      return location;
    }
    const path = given === ':memory:' ? given : resolve(base, given);
    const isDefault = path === resolve(cwd, DEFAULT_DB_PATH);
    // Printed commands repeat what the user typed; paths from the environment or config are printed absolute.
    location = { kind: 'sqlite', path, label: path, source, flag: isDefault ? '' : source === 'flag' ? given : path };
    return location;
  };

  // The database's directory and file are created on first write, private to this user (SPEC §7): 0700 and 0600.
  // An existing directory or file keeps the mode its owner gave it. SQLite gives its -wal and -shm files the
  // database file's mode.
  const ensureDatabase = (found: SqliteLocation): SqliteLocation => {
    if (found.path === ':memory:' || existsSync(found.path)) return found;
    try {
      mkdirSync(dirname(found.path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new CantbookError('E_STORE_UNAVAILABLE', `cannot create the directory for the database '${found.path}': ${messageOf(error)}`, { path: found.path });
    }
    try {
      closeSync(openSync(found.path, 'wx', 0o600));
    } catch (error) {
      // Another process created it first: theirs is as private as ours.
      if ((error as { code?: unknown }).code !== 'EEXIST') {
        throw new CantbookError('E_STORE_UNAVAILABLE', `cannot create the database '${found.path}': ${messageOf(error)}`, { path: found.path });
      }
    }
    return found;
  };

  const openFor = async <T>(readonly: boolean, fn: (store: EventStore) => Promise<T>): Promise<T> => {
    const found = database();
    if (found.kind === 'postgres') return withPostgresStore(found.url, !readonly, fn);
    const { path } = readonly ? found : ensureDatabase(found);
    if (readonly && path !== ':memory:' && !existsSync(path)) {
      throw new CantbookError('E_STORE_UNAVAILABLE', `no database at '${path}' (a command that only reads never creates one; run a playbook first, or pass --db)`, { path });
    }
    const store = openSqliteStore(path, readonly && path !== ':memory:' ? { readonly: true } : {});
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };

  // Printed commands leave a password out of `--db`; once per invocation, say where the pasted command gets it from.
  let passwordNoted = false;
  const command: CommandLine = (...words) => {
    const found = database();
    if (found.kind === 'postgres' && found.url.hasPassword && found.flag !== '' && !passwordNoted) {
      passwordNoted = true;
      out.note(PASSWORD_NOTE);
    }
    return createCommandLine(programOf(env), found.flag)(...words);
  };

  return {
    out,
    cwd,
    config: readConfig,
    database,
    command,
    withStore: (fn) => openFor(false, fn),
    withReadStore: (fn) => openFor(true, fn),
    openWritableStore: () => {
      const found = database();
      if (found.kind !== 'sqlite') throw new TypeError('openWritableStore: the database is PostgreSQL; the store withReadStore opened is writable');
      return openSqliteStore(ensureDatabase(found).path);
    },
    dispatcher(agentFlag, need) {
      const flag = agentFlag?.trim();
      if (flag !== undefined && flag !== '') return createDispatcherFromSpec(flag, { cwd });
      const remembered = need?.remembered;
      // Pasted in the same directory (SPEC §7), a relative path in the spec names what it named at the start.
      if (remembered?.agent !== undefined) return createDispatcherFromSpec(remembered.agent, { cwd });
      const configured = readConfig();
      if (configured?.agent !== undefined) return createDispatcherFromSpec(configured.agent, { cwd: dirname(configured.path) });
      if (need !== null && need.agentic.length === 0) return noAgent;
      const first = need?.agentic[0];
      const agentic = [...new Set((need?.agentic ?? []).filter((node) => node.playbook === first?.playbook).map((node) => node.id))];
      const which = first === undefined ? 'this run has agentic nodes' : `playbook '${first.playbook}' has agentic node${agentic.length > 1 ? 's' : ''} ${agentic.map((id) => `'${id}'`).join(', ')} still to run`;
      throw new CliError(
        'E_ADAPTER_INVALID',
        CONFIG_EXIT_CODE,
        `no agent configured and ${which}: pass --agent <spec> (exec:<command> | module:<path> | http:<url>) ` +
          `or put {"agent": "exec:node starter/demo-agent.mjs"} in ${CONFIG_FILE_NAME} in ${cwd}`,
      );
    },
    runner() {
      return createSubprocessRunner();
    },
    leaseMs: () => parseLeaseMs(env[LEASE_MS_VARIABLE]),
  };
}

/** Printed (stderr, human mode) with the first command line whose `--db` URL had its password taken out. */
export const PASSWORD_NOTE =
  'note: printed commands leave the password out of the --db URL (a command line is visible to other users of this machine): ' +
  'give it with PGPASSWORD or ~/.pgpass, or put the whole URL in CANTBOOK_DB';

/**
 * The `--db` a printed command repeats for a PostgreSQL URL (SPEC §7: it must
 * work pasted in the same shell and directory, and a secret is never printed):
 * the URL as given when it has no password; when it has one, nothing if the
 * URL came from CANTBOOK_DB or the config file (the pasted command reads the
 * same setting, password included), else the URL without its password (the
 * password then comes from PGPASSWORD or ~/.pgpass, which the driver reads).
 * Pure.
 */
export function postgresFlag(url: PostgresUrl, source: DatabaseSource): string {
  if (!url.hasPassword) return url.display;
  return source === 'env' || source === 'config' ? '' : url.display;
}

/**
 * Opens the PostgreSQL store `url` names, runs `fn`, and closes it whatever
 * happens. Connection failures are the store's E_STORE_UNAVAILABLE (exit 74,
 * naming host, port, database and user); any message that would quote the
 * URL's password has it replaced by `***`.
 */
async function withPostgresStore<T>(url: PostgresUrl, create: boolean, fn: (store: EventStore) => Promise<T>): Promise<T> {
  try {
    const store = await openPostgresStore(url.connectionString, { create, ...(url.schema === undefined ? {} : { schema: url.schema }) });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  } catch (error) {
    throw scrubbed(error, url.secrets);
  }
}

/** `error`, or when its message or hint quotes a secret, the same coded failure with the secret replaced by `***`. */
function scrubbed(error: unknown, secrets: readonly string[]): unknown {
  if (secrets.length === 0) return error;
  const reported = describeError(error);
  const leaks = (text: string | undefined): boolean => text !== undefined && scrubSecrets(text, secrets) !== text;
  if (!leaks(reported.message) && !leaks(reported.hint)) return error;
  return new CliError(reported.code, reported.exitCode, scrubSecrets(reported.message, secrets), reported.hint === undefined ? undefined : scrubSecrets(reported.hint, secrets));
}

/**
 * `CANTBOOK_LEASE_MS` as a number of milliseconds (undefined when unset or
 * empty). Throws E_USAGE naming the variable for anything but a whole number
 * of at least 3. Pure.
 */
export function parseLeaseMs(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const ms = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(ms) || ms < MIN_LEASE_MS) {
    throw new CliError('E_USAGE', USAGE_EXIT_CODE, `${LEASE_MS_VARIABLE} must be a whole number of milliseconds (at least ${MIN_LEASE_MS}), got '${text}'`, `unset it for the default lease (${DEFAULT_LEASE_MS} ms), or set it like ${LEASE_MS_VARIABLE}=5000`);
  }
  return ms;
}

/** Stands in when no agent is configured and no agentic node is left to run: never called. */
const noAgent: AgentDispatcher = {
  dispatch() {
    return { status: 'failure', error: 'no agent is configured (pass --agent or set "agent" in cantbook.config.json)' };
  },
};
