/**
 * What one CLI invocation knows about its surroundings: the global options,
 * the working directory and environment, where the database is, the approval
 * secret and the agent dispatcher. Everything is resolved lazily, so a command
 * only fails on the settings it actually needs.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CantbookError, createDispatcherFromSpec, createSubprocessRunner, openSqliteStore } from '../index.js';
import type { AgentDispatcher, DeterministicRunner, EventStore, PlaybookDefinition } from '../index.js';
import { CliError, messageOf } from './cliErrors.js';
import { CONFIG_EXIT_CODE, CONFIG_FILE_NAME, readConfigFile } from './configFile.js';
import type { CliConfig } from './configFile.js';
import { createOutput } from './output.js';
import type { Output, TextSink } from './output.js';
import { createCommandLine, programOf } from './runResult.js';
import type { CommandLine } from './runResult.js';
import { resolveCliSecret } from './secretFile.js';

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

/** The resolved database: absolute path, and the text to pass as `--db` in printed commands (if any). */
export interface DatabaseLocation {
  path: string;
  /** The path a printed command must pass as `--db`, or '' when the default applies. */
  flag: string;
  source: 'flag' | 'env' | 'config' | 'default';
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
   * Opens the store (creating its directory on first use), runs `fn`, and
   * closes the store whatever happens.
   */
  withStore<T>(fn: (store: EventStore) => Promise<T>): Promise<T>;
  /** The approval secret (CANTBOOK_SECRET or `<db>.secret`). Never print it. */
  secret(): string;
  /**
   * The agent dispatcher: `--agent` when given, else the config file's `agent`.
   * When neither is set, playbooks without agentic nodes still run (their
   * deterministic nodes go to the subprocess runner); others fail with
   * E_ADAPTER_INVALID (exit 78) explaining how to configure an agent.
   */
  dispatcher(agentFlag: string | undefined, playbook: PlaybookDefinition | null): AgentDispatcher;
  /** The subprocess runner for deterministic nodes. */
  runner(): DeterministicRunner;
}

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
  let secret: string | undefined;

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
    if (given.trim() === '') throw new CantbookError('E_USAGE', '--db needs a path');
    const path = given === ':memory:' ? given : resolve(base, given);
    const isDefault = path === resolve(cwd, DEFAULT_DB_PATH);
    // Printed commands repeat what the user typed; paths from the environment or config are printed absolute.
    location = { path, source, flag: isDefault ? '' : source === 'flag' ? given : path };
    return location;
  };

  // The database's directory is created on first use (by the store or the secret file, whichever comes first).
  const ensureDirectory = (): DatabaseLocation => {
    const found = database();
    if (found.path === ':memory:') return found;
    try {
      mkdirSync(dirname(found.path), { recursive: true });
    } catch (error) {
      throw new CantbookError('E_STORE_UNAVAILABLE', `cannot create the directory for the database '${found.path}': ${messageOf(error)}`, { path: found.path });
    }
    return found;
  };

  return {
    out,
    cwd,
    config: readConfig,
    database,
    command: (...words) => createCommandLine(programOf(env), database().flag)(...words),
    async withStore(fn) {
      const { path } = ensureDirectory();
      const store = openSqliteStore(path);
      try {
        return await fn(store);
      } finally {
        await store.close();
      }
    },
    secret() {
      if (secret !== undefined) return secret;
      const resolved = resolveCliSecret(ensureDirectory().path, env);
      for (const warning of resolved.warnings) out.note(`warning: ${warning}`, { always: true });
      secret = resolved.secret;
      return secret;
    },
    dispatcher(agentFlag, playbook) {
      const flag = agentFlag?.trim();
      if (flag !== undefined && flag !== '') return createDispatcherFromSpec(flag, { cwd });
      const configured = readConfig();
      if (configured?.agent !== undefined) return createDispatcherFromSpec(configured.agent, { cwd: dirname(configured.path) });
      const agentic = playbook?.nodes.filter((node) => node.type === 'agentic').map((node) => node.id) ?? [];
      if (playbook !== null && agentic.length === 0) return noAgent;
      const which = playbook === null ? 'this run has agentic nodes' : `playbook '${playbook.name}' has agentic node${agentic.length > 1 ? 's' : ''} ${agentic.map((id) => `'${id}'`).join(', ')}`;
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
  };
}

/** Stands in when no agent is configured and the playbook has no agentic node: never called. */
const noAgent: AgentDispatcher = {
  dispatch() {
    return { status: 'failure', error: 'no agent is configured (pass --agent or set "agent" in cantbook.config.json)' };
  },
};
