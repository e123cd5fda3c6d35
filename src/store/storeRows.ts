/**
 * What both event stores compute the same way around their SQL: the checks of
 * an append request, the errors a refused append or lease reports, the events
 * an append returns, and the values of a runs row.
 */
import { CantbookError, E_CONCURRENT_UPDATE, E_LEASE_LOST } from '../errors.js';
import type { NewRunEvent, RunEvent } from '../events/types.js';
import type { ApprovalRow, RunRow } from '../projections/types.js';
import type { AppendRequest, AttemptLog, ClaimRunsRequest, RunSettings } from './eventStore.js';

/** A value bound to a SQL parameter by both drivers. */
export type RowValue = string | number | null;

/** Throws TypeError on an append request no store could write (a programmer error, not bad data). */
export function validateAppend(request: AppendRequest): void {
  const { runId, expectedVersion, events, run, approvals } = request;
  if (!Number.isInteger(expectedVersion) || expectedVersion < 0) {
    throw new TypeError(`append: expectedVersion must be a non-negative integer, got ${String(expectedVersion)}`);
  }
  if (events.length === 0) {
    throw new TypeError(`append: no events for run '${runId}' (an append writes at least one event)`);
  }
  if (run.runId !== runId) {
    throw new TypeError(`append: the run row is for run '${run.runId}', not '${runId}'`);
  }
  if (run.version !== expectedVersion + events.length) {
    throw new TypeError(
      `append: the run row of '${runId}' has version ${run.version}, expected ${expectedVersion + events.length} (expectedVersion ${expectedVersion} + ${events.length} events)`,
    );
  }
  for (const approval of approvals) {
    if (approval.runId !== runId) {
      throw new TypeError(`append: approval '${approval.approvalId}' belongs to run '${approval.runId}', not '${runId}'`);
    }
  }
  if (request.settings !== undefined) validateSettings(runId, request.settings);
  if (request.attemptLogs !== undefined) for (const log of request.attemptLogs) validateAttemptLog(runId, log);
}

function validateSettings(runId: string, settings: RunSettings): void {
  if (typeof settings !== 'object' || settings === null) {
    throw new TypeError(`append: the settings of run '${runId}' must be an object, got ${String(settings)}`);
  }
  if (settings.agent !== undefined && typeof settings.agent !== 'string') {
    throw new TypeError(`append: the settings of run '${runId}' have agent ${JSON.stringify(settings.agent)}, expected a string`);
  }
}

function validateAttemptLog(runId: string, log: AttemptLog): void {
  const where = `append: the attempt log of run '${runId}', node ${JSON.stringify(log.nodeId)}, attempt ${String(log.attempt)}`;
  if (typeof log.nodeId !== 'string' || log.nodeId === '') throw new TypeError(`${where}: nodeId must be a non-empty string`);
  if (!Number.isInteger(log.attempt) || log.attempt < 1) throw new TypeError(`${where}: attempt must be a positive integer`);
  if (typeof log.text !== 'string') throw new TypeError(`${where}: text must be a string, got ${typeof log.text}`);
  if (!Number.isSafeInteger(log.droppedBytes) || log.droppedBytes < 0) {
    throw new TypeError(`${where}: droppedBytes must be a non-negative integer, got ${String(log.droppedBytes)}`);
  }
}

/**
 * The attempt logs an append writes, as both stores store them: one per
 * (nodeId, attempt), the last of duplicates winning (as over two appends), and
 * a NUL character as U+FFFD, since PostgreSQL's text cannot hold one and both
 * stores must read back the same text.
 */
export function attemptLogRows(logs: readonly AttemptLog[]): AttemptLog[] {
  const byAttempt = new Map<string, AttemptLog>();
  for (const log of logs) {
    const key = `${log.nodeId}\u0000${String(log.attempt)}`;
    byAttempt.set(key, log.text.includes('\u0000') ? { ...log, text: log.text.replaceAll('\u0000', '\uFFFD') } : log);
  }
  return [...byAttempt.values()];
}

/** E_LEASE_LOST: the token is not the run's current one, or its lease ran out. */
export function leaseLost(runId: string, token: number, current: number | undefined): CantbookError {
  const why = current === undefined ? 'the run has no lease' : current === token ? 'it ran out' : `another driver took the run over: its lease is now token ${current}`;
  return new CantbookError(E_LEASE_LOST, `run '${runId}': the lease with token ${token} was lost (${why})`, { runId, token, currentToken: current ?? null });
}

/** Checks the common arguments of the lease calls; throws TypeError on a programmer error. */
export function leaseRequest(request: { runId: string; owner: string; now: string; ttlMs: number }): { runId: string; owner: string; now: string; ttlMs: number } {
  if (typeof request.owner !== 'string' || request.owner === '') throw new TypeError('lease: owner must be a non-empty string');
  if (!Number.isInteger(request.ttlMs) || request.ttlMs <= 0) throw new TypeError(`lease: ttlMs must be a positive integer, got ${String(request.ttlMs)}`);
  if (Number.isNaN(Date.parse(request.now))) throw new TypeError(`lease: now must be an ISO-8601 time, got ${String(request.now)}`);
  return { ...request, now: new Date(request.now).toISOString() };
}

/** Checks a claimRuns request as leaseRequest does, and its limit (a non-negative integer). */
export function claimRequest(request: ClaimRunsRequest): { owner: string; now: string; ttlMs: number; limit: number } {
  const { owner, now, ttlMs } = leaseRequest({ runId: '', ...request });
  if (!Number.isInteger(request.limit) || request.limit < 0) throw new TypeError(`claimRuns: limit must be a non-negative integer, got ${String(request.limit)}`);
  return { owner, now, ttlMs, limit: request.limit };
}

/** An ISO time `ms` later. */
export function addMs(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

/** E_CONCURRENT_UPDATE: another append moved the run past `expectedVersion`. */
export function concurrentUpdate(runId: string, expectedVersion: number, actualVersion: number | undefined, cause?: unknown): CantbookError {
  const found = actualVersion === undefined ? 'has moved on' : `is at version ${actualVersion}`;
  return new CantbookError(
    E_CONCURRENT_UPDATE,
    `run '${runId}' was changed concurrently: expected version ${expectedVersion}, but the stream ${found}`,
    { runId, expectedVersion, actualVersion },
    cause === undefined ? undefined : { cause },
  );
}

/** An event as an append returns it: its run, seq, global position and hash. */
export function storedEvent(event: NewRunEvent, runId: string, seq: number, globalSeq: number, hash: string): RunEvent {
  return { runId, seq, globalSeq, type: event.type, data: event.data, at: event.at, hash } as RunEvent;
}

/** A runs row's values, in RUN_COLUMNS order (JSON columns as text). */
export function runParams(run: RunRow): RowValue[] {
  return [
    run.runId,
    run.playbookName,
    run.playbookHash,
    run.status,
    run.currentNode ?? null,
    run.errorContext == null ? null : JSON.stringify(run.errorContext),
    run.startedAt,
    run.updatedAt,
    run.completedAt ?? null,
    run.version,
    run.epicId ?? null,
    run.sessionId ?? null,
    run.error == null ? null : JSON.stringify(run.error),
    JSON.stringify(run.activeNodes),
    run.wakeAt ?? null,
    run.parentRunId ?? null,
  ];
}

/**
 * A binding's value as its row stores it (JSON), or undefined when the context
 * has no such own key or a value JSON cannot hold (JSON.stringify of the whole
 * context drops those keys too).
 */
export function bindingValue(bindings: RunRow['bindings'], key: string): string | undefined {
  return Object.hasOwn(bindings, key) ? (JSON.stringify(bindings[key]) as string | undefined) : undefined;
}

/** An approvals row's values, in APPROVAL_COLUMNS order; `bool` encodes `resumed` as the driver binds it. */
export function approvalParams<B>(approval: ApprovalRow, bool: (value: boolean) => B): (RowValue | B)[] {
  return [
    approval.approvalId,
    approval.runId,
    approval.nodeId,
    approval.status,
    approval.prompt,
    approval.tokenHash,
    approval.contextDigest,
    approval.expiresAt ?? null,
    approval.requestedAt,
    approval.decidedAt ?? null,
    approval.approver ?? null,
    approval.reason ?? null,
    bool(approval.resumed),
  ];
}

/** Rows grouped by their run, each group in the rows' order. */
export function groupByRun<R>(rows: readonly R[], runOf: (row: R) => string): Map<string, R[]> {
  const byRun = new Map<string, R[]>();
  for (const row of rows) {
    const runId = runOf(row);
    const list = byRun.get(runId);
    if (list === undefined) byRun.set(runId, [row]);
    else list.push(row);
  }
  return byRun;
}

/** A listRuns limit: undefined for none, else a positive integer (TypeError otherwise: a programmer error). */
export function limitOf(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`listRuns: limit must be a positive integer, got ${String(limit)}`);
  return limit;
}
