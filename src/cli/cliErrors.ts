/**
 * Every failure the CLI reports, reduced to `{code, message, exitCode}` and
 * printed as `error[CODE]: message` (or `{"error": {...}}` with --json).
 * Never a stack trace: only messages leave this module.
 */
import { CantbookError, formatIssue } from '../index.js';
import type { CantbookErrorCode, PlaybookIssue } from '../index.js';
import type { Output } from './output.js';

// Defined in src/errors.ts; named here because the public entry point does not re-export them.
const E_USAGE = 'E_USAGE' satisfies CantbookErrorCode;
const E_FILE_UNREADABLE = 'E_FILE_UNREADABLE' satisfies CantbookErrorCode;

/** The code reported for anything that is not a coded cantbook error (a bug, or a crash in a dependency). */
export const E_INTERNAL = 'E_INTERNAL';
/** Exit code for E_INTERNAL (sysexits EX_SOFTWARE). */
export const INTERNAL_EXIT_CODE = 70;

/**
 * A coded failure for conditions only the CLI knows about (its config file).
 * Shaped like CantbookError (`code`, `exitCode`) so it is reported the same way.
 */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: number;
  /** What to do next, printed as `hint: ...` in human mode. */
  readonly hint: string | undefined;

  constructor(code: string, exitCode: number, message: string, hint?: string) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** The same failure (code, exit code, message) with a hint attached. */
export function withHint(error: unknown, hint: string): CliError {
  const reported = describeError(error);
  return new CliError(reported.code, reported.exitCode, reported.message, hint);
}

/** A failure ready to print. */
export interface ReportedError {
  code: string;
  message: string;
  exitCode: number;
  /** Playbook issues, for E_PLAYBOOK_PARSE. */
  issues?: readonly PlaybookIssue[];
  fileName?: string;
  /** One line telling the user what to do next (human mode only). */
  hint?: string;
}

/** A usage error (exit 64), thrown by option parsers and commands. */
export function usageError(message: string): CantbookError {
  return new CantbookError(E_USAGE, message);
}

/** A run id the store does not know (exit 67). */
export function runNotFound(runId: string): CantbookError {
  return new CantbookError('E_RUN_NOT_FOUND', `no run '${runId}' in this store`, { runId });
}

/** A file that cannot be read (exit 66), naming the file and the reason. */
export function unreadableFile(path: string, error: unknown, what = 'file'): CantbookError {
  const code = (error as { code?: unknown } | null)?.code;
  const reason =
    code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : messageOf(error);
  return new CantbookError(E_FILE_UNREADABLE, `cannot read ${what} '${path}': ${reason}`, { path });
}

/**
 * Reduces anything thrown to a printable error. Coded errors (a string `code`
 * like `E_*` and a numeric `exitCode`) keep both; anything else is E_INTERNAL
 * with its message only.
 */
export function describeError(error: unknown): ReportedError {
  if (typeof error === 'object' && error !== null) {
    const { code, exitCode, issues, fileName, hint, details } = error as { code?: unknown; exitCode?: unknown; issues?: unknown; fileName?: unknown; hint?: unknown; details?: unknown };
    if (typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code) && typeof exitCode === 'number') {
      const reported: ReportedError = { code, message: messageOf(error), exitCode };
      if (Array.isArray(issues)) reported.issues = issues as PlaybookIssue[];
      if (typeof fileName === 'string') reported.fileName = fileName;
      const derived = typeof hint === 'string' ? hint : hintFor(code, details);
      if (derived !== undefined) reported.hint = derived;
      return reported;
    }
  }
  return { code: E_INTERNAL, message: `unexpected error: ${messageOf(error)}`, exitCode: INTERNAL_EXIT_CODE };
}

/** Hints for codes whose remedy is always the same. */
function hintFor(code: string, details: unknown): string | undefined {
  const missing = (details as { missing?: unknown } | undefined)?.missing;
  if (code === 'E_INPUT_MISSING' && Array.isArray(missing)) return `pass ${missing.map((name) => `--input ${String(name)}='<value>'`).join(' ')}`;
  const declared = (details as { declared?: unknown } | undefined)?.declared;
  if (code === 'E_INPUT_UNKNOWN' && Array.isArray(declared)) return `the playbook takes ${declared.map((name) => `--input ${String(name)}='<value>'`).join(' ')}`;
  if (code === 'E_USAGE') return "see 'cantbook --help' or 'cantbook <command> --help'";
  return undefined;
}

/**
 * Prints an error: `error[CODE]: message` on stderr (then the playbook issues,
 * one per line, and the hint), or `{"error": {code, message, issues?}}` on
 * stdout in JSON mode. Returns the exit code to use.
 */
export function reportError(output: Output, error: unknown, hint?: string): number {
  const reported = describeError(error);
  if (hint !== undefined && reported.hint === undefined) reported.hint = hint;
  if (output.json) {
    const body: Record<string, unknown> = { code: reported.code, message: reported.message };
    if (reported.issues) body.issues = reported.issues;
    output.stdout.write(`${JSON.stringify({ error: body }, null, 2)}\n`);
    return reported.exitCode;
  }
  const lines = [`error[${reported.code}]: ${reported.message}`];
  for (const issue of reported.issues ?? []) lines.push(`  ${formatIssue(issue, reported.fileName)}`);
  if (reported.hint !== undefined) lines.push(`hint: ${reported.hint}`);
  output.note(lines.join('\n'));
  return reported.exitCode;
}

/** The message of anything thrown, never its stack. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
