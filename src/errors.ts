/**
 * Error codes and the small set of error classes cantbook throws.
 *
 * Callers branch on `code`, never on `instanceof`. Every code is listed in
 * docs/errors.md with its CLI exit code and a remedy. Failures *inside* a run
 * (a dispatcher error, a timeout, a rejection) are events, not exceptions.
 */

export const E_PLAYBOOK_PARSE = 'E_PLAYBOOK_PARSE';
export const E_PLAYBOOK_RUNTIME_INVALID = 'E_PLAYBOOK_RUNTIME_INVALID';
export const E_PLAYBOOK_RESUME_BLOCKED = 'E_PLAYBOOK_RESUME_BLOCKED';
export const E_APPROVAL_NOT_FOUND = 'E_APPROVAL_NOT_FOUND';
export const E_APPROVAL_ALREADY_DECIDED = 'E_APPROVAL_ALREADY_DECIDED';
export const E_APPROVAL_TOKEN_INVALID = 'E_APPROVAL_TOKEN_INVALID';
export const E_APPROVAL_EXPIRED = 'E_APPROVAL_EXPIRED';
export const E_APPROVAL_SECRET_MISSING = 'E_APPROVAL_SECRET_MISSING';
export const E_CONCURRENT_UPDATE = 'E_CONCURRENT_UPDATE';
export const E_RUN_NOT_FOUND = 'E_RUN_NOT_FOUND';
export const E_INPUT_MISSING = 'E_INPUT_MISSING';
/** An input the playbook does not declare was given (SPEC §4), when the playbook declares inputs. */
export const E_INPUT_UNKNOWN = 'E_INPUT_UNKNOWN';
export const E_LOG_CORRUPT = 'E_LOG_CORRUPT';
export const E_STORE_UNAVAILABLE = 'E_STORE_UNAVAILABLE';
/** The command line was malformed: unknown command or flag, missing or bad option value. */
export const E_USAGE = 'E_USAGE';
/** A file named on the command line does not exist or cannot be read. */
export const E_FILE_UNREADABLE = 'E_FILE_UNREADABLE';
/** A run was asked to be driven (recover, resume, retry) while another driver holds its live lease (SPEC §11). */
export const E_RUN_ACTIVE = 'E_RUN_ACTIVE';
/** A driver's lease on a run was taken over (it expired, or was forced): its append was refused and it stopped (SPEC §11). */
export const E_LEASE_LOST = 'E_LEASE_LOST';
/** A driver stopped on request (host shutdown, a worker's stop) before the run paused or ended; the run is recoverable. */
export const E_RUN_INTERRUPTED = 'E_RUN_INTERRUPTED';
/** cancelRun on a run that already ended (completed, failed, cancelled): never a silent no-op (SPEC §10). */
export const E_RUN_FINISHED = 'E_RUN_FINISHED';
/** retryRun on a run that cannot be redriven: not failed, cancelled, or failed because a human rejected it (SPEC §10). */
export const E_RUN_NOT_RETRYABLE = 'E_RUN_NOT_RETRYABLE';
/** A `playbook:` reference of a `playbook` or `map` node resolves to nothing (SPEC §12); checked before any event. */
export const E_PLAYBOOK_NOT_FOUND = 'E_PLAYBOOK_NOT_FOUND';
/** The `playbook:` references of a tree lead back to a playbook already on the path (SPEC §12); checked before any event. */
export const E_PLAYBOOK_CYCLE = 'E_PLAYBOOK_CYCLE';
/** An agent adapter is misconfigured: an unknown spec, a bad command line or URL, a module exporting no dispatcher. */
export const E_ADAPTER_INVALID = 'E_ADAPTER_INVALID';

/** Every runtime error code (parse issues have their own `I_*` codes, see playbook/issues.ts). */
export type CantbookErrorCode =
  | typeof E_PLAYBOOK_PARSE
  | typeof E_PLAYBOOK_RUNTIME_INVALID
  | typeof E_PLAYBOOK_RESUME_BLOCKED
  | typeof E_APPROVAL_NOT_FOUND
  | typeof E_APPROVAL_ALREADY_DECIDED
  | typeof E_APPROVAL_TOKEN_INVALID
  | typeof E_APPROVAL_EXPIRED
  | typeof E_APPROVAL_SECRET_MISSING
  | typeof E_CONCURRENT_UPDATE
  | typeof E_RUN_NOT_FOUND
  | typeof E_INPUT_MISSING
  | typeof E_INPUT_UNKNOWN
  | typeof E_LOG_CORRUPT
  | typeof E_STORE_UNAVAILABLE
  | typeof E_USAGE
  | typeof E_FILE_UNREADABLE
  | typeof E_ADAPTER_INVALID
  | typeof E_RUN_ACTIVE
  | typeof E_LEASE_LOST
  | typeof E_RUN_INTERRUPTED
  | typeof E_RUN_FINISHED
  | typeof E_RUN_NOT_RETRYABLE
  | typeof E_PLAYBOOK_NOT_FOUND
  | typeof E_PLAYBOOK_CYCLE;

/** The CLI exit code for each error code (sysexits.h where one fits). */
export const exitCodes: Readonly<Record<CantbookErrorCode, number>> = {
  E_PLAYBOOK_PARSE: 70,
  E_PLAYBOOK_RUNTIME_INVALID: 65,
  E_PLAYBOOK_RESUME_BLOCKED: 75,
  E_APPROVAL_NOT_FOUND: 67,
  E_APPROVAL_ALREADY_DECIDED: 75,
  E_APPROVAL_TOKEN_INVALID: 77,
  E_APPROVAL_EXPIRED: 75,
  E_APPROVAL_SECRET_MISSING: 78,
  E_CONCURRENT_UPDATE: 75,
  E_RUN_NOT_FOUND: 67,
  E_INPUT_MISSING: 64,
  E_INPUT_UNKNOWN: 64,
  E_LOG_CORRUPT: 76,
  E_STORE_UNAVAILABLE: 74,
  E_USAGE: 64,
  E_FILE_UNREADABLE: 66,
  E_ADAPTER_INVALID: 78,
  E_RUN_ACTIVE: 75,
  E_LEASE_LOST: 75,
  E_RUN_INTERRUPTED: 75,
  E_RUN_FINISHED: 75,
  E_RUN_NOT_RETRYABLE: 65,
  E_PLAYBOOK_NOT_FOUND: 66,
  E_PLAYBOOK_CYCLE: 65,
};

/**
 * A runtime error with a stable `code`. `details` holds structured, secret-free
 * facts (ids, versions) for programs; `message` is for people.
 */
export class CantbookError extends Error {
  readonly code: CantbookErrorCode;
  readonly exitCode: number;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: CantbookErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CantbookError';
    this.code = code;
    this.exitCode = exitCodes[code];
    this.details = details;
  }
}

/** True when `error` carries the given cantbook code (works across realms and copies). */
export function hasCode(error: unknown, code: CantbookErrorCode): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
