/**
 * `cantbook.config.json`: per-project CLI settings, read from the working
 * directory. Two keys, both optional:
 *
 *     { "agent": "exec:node starter/demo-agent.mjs", "db": ".cantbook/cantbook.db" }
 *
 * `agent` is the dispatcher spec used when `--agent` is not given; `db` is the
 * database used when neither `--db` nor CANTBOOK_DB is set: a SQLite path or a
 * `postgres://` URL. Relative paths are relative to the directory holding the
 * file; a URL is used as it is.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, messageOf } from './cliErrors.js';

/** The config file's name. */
export const CONFIG_FILE_NAME = 'cantbook.config.json';

/** Code and exit code (sysexits EX_CONFIG) for a config file or agent spec the CLI cannot use. */
export const E_CONFIG_INVALID = 'E_CONFIG_INVALID';
export const CONFIG_EXIT_CODE = 78;

/** The parsed config file. */
export interface CliConfig {
  /** Absolute path of the file it came from. */
  path: string;
  agent?: string;
  db?: string;
}

const KEYS = new Set(['agent', 'db', '$schema']);

/**
 * Reads `cantbook.config.json` from `dir`; undefined when there is none.
 * Throws E_CONFIG_INVALID (exit 78) naming the file when it is not a JSON
 * object with string `agent` / `db`, or has keys it does not know.
 */
export function readConfigFile(dir: string): CliConfig | undefined {
  const path = join(dir, CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw invalid(path, `cannot be read: ${messageOf(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(path, `is not valid JSON: ${messageOf(error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(path, 'must hold a JSON object like {"agent": "exec:node agent.mjs"}');
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => !KEYS.has(key));
  if (unknown.length > 0) throw invalid(path, `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known: agent, db)`);
  const config: CliConfig = { path };
  for (const key of ['agent', 'db'] as const) {
    const entry = record[key];
    if (entry === undefined) continue;
    if (typeof entry !== 'string' || entry.trim() === '') throw invalid(path, `'${key}' must be a non-empty string, found ${JSON.stringify(entry)}`);
    config[key] = entry.trim();
  }
  return config;
}

function invalid(path: string, why: string): CliError {
  return new CliError(E_CONFIG_INVALID, CONFIG_EXIT_CODE, `the config file '${path}' ${why}`);
}
