/**
 * The approval secret the CLI signs resume tokens with (SPEC §5.6):
 * CANTBOOK_SECRET when set, else a random per-database secret kept next to the
 * database in `<db>.secret` (mode 0600). The secret is never printed.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { CantbookError } from '../index.js';
import { messageOf } from './cliErrors.js';

/** Where the secret came from; reported in warnings, never the value. */
export interface ResolvedSecret {
  secret: string;
  source: 'env' | 'file';
  /** The secret file, when `source` is `file`. */
  path?: string;
  /** Warnings to show the user (e.g. permissions were tightened). */
  warnings: string[];
}

const SECRET_PATTERN = /^[0-9a-f]{64}$/;

/** The secret file of a database: `<db>.secret`. */
export function secretPathOf(dbPath: string): string {
  return `${dbPath}.secret`;
}

/**
 * Returns CANTBOOK_SECRET, else reads `<db>.secret`, creating it on first use
 * with 32 random bytes (hex) and mode 0600.
 *
 * Creation is atomic: the secret is written to a private temporary file that
 * is then hard-linked into place, so two processes racing to create it agree
 * on one secret and neither ever reads a half-written file. An existing file
 * readable by group or others is tightened to 0600 (when we own it) with a
 * warning. Throws E_APPROVAL_SECRET_MISSING when the file cannot be created or
 * does not hold a secret.
 */
export function resolveCliSecret(dbPath: string, env: NodeJS.ProcessEnv): ResolvedSecret {
  const fromEnv = env.CANTBOOK_SECRET;
  if (fromEnv !== undefined && fromEnv !== '') return { secret: fromEnv, source: 'env', warnings: [] };
  const path = secretPathOf(dbPath);
  const warnings: string[] = [];
  if (!exists(path)) createSecretFile(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw secretError(`cannot read the secret file '${path}': ${messageOf(error)}`);
  }
  if (!SECRET_PATTERN.test(text)) {
    throw secretError(`the secret file '${path}' does not hold a secret (expected 64 hex characters); delete it to generate a new one (tokens already issued will stop working)`);
  }
  const stat = statSync(path);
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8);
    if (typeof process.getuid === 'function' && stat.uid === process.getuid()) {
      chmodSync(path, 0o600);
      warnings.push(`the secret file '${path}' was readable by others (mode ${mode}); its mode is now 600`);
    } else {
      warnings.push(`the secret file '${path}' is readable by others (mode ${mode}) and not owned by you; restrict it to mode 600`);
    }
  }
  return { secret: text, source: 'file', path, warnings };
}

function createSecretFile(path: string): void {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(temporary, 'wx', 0o600);
    writeSync(fd, `${randomBytes(32).toString('hex')}\n`);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    try {
      linkSync(temporary, path);
    } catch (error) {
      // Another process created it first: use theirs.
      if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
    }
  } catch (error) {
    throw secretError(`cannot create the secret file '${path}': ${messageOf(error)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // already gone
    }
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function secretError(message: string): CantbookError {
  return new CantbookError('E_APPROVAL_SECRET_MISSING', message);
}
