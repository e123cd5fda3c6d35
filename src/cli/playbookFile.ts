/**
 * Reading `.cantbook` files and JSON inputs named on the command line.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parsePlaybook } from '../index.js';
import type { PlaybookDefinition, RunContext } from '../index.js';
import { unreadableFile, usageError } from './cliErrors.js';

/** A playbook file read and parsed. */
export interface PlaybookFile {
  /** The path as the user wrote it (used in messages and issue locations). */
  fileName: string;
  source: string;
  definition: PlaybookDefinition;
  sourceHash: string;
}

/**
 * Reads and parses a playbook file. Throws E_FILE_UNREADABLE (exit 66) when
 * it cannot be read, PlaybookParseError (E_PLAYBOOK_PARSE, exit 70, every
 * issue with file:line:col) when it is not a valid playbook.
 */
export function readPlaybookFile(cwd: string, fileName: string): PlaybookFile {
  let source: string;
  try {
    source = readFileSync(resolve(cwd, fileName), 'utf8');
  } catch (error) {
    throw unreadableFile(fileName, error, 'playbook');
  }
  const { definition, sourceHash } = parsePlaybook(source, { fileName });
  return { fileName, source, definition, sourceHash };
}

/**
 * The run's initial context from `--inputs file.json` (a JSON object) and
 * repeated `--input key=value` (strings; later wins, and they override the file).
 * Throws E_FILE_UNREADABLE or E_USAGE.
 */
export function readInputs(cwd: string, inputsFile: string | undefined, pairs: readonly string[]): RunContext {
  const context: RunContext = {};
  if (inputsFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(resolve(cwd, inputsFile), 'utf8');
    } catch (error) {
      throw unreadableFile(inputsFile, error, 'inputs file');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw usageError(`--inputs '${inputsFile}' is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw usageError(`--inputs '${inputsFile}' must hold a JSON object like {"targetVersion": "1.2.0"}`);
    }
    Object.assign(context, value);
  }
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw usageError(`--input expects key=value, got '${pair}'`);
    context[pair.slice(0, at).trim()] = pair.slice(at + 1);
  }
  return context;
}
