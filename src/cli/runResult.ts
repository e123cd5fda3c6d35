/**
 * How `run`, `approve`, `reject`, `resume` and `recover` present a run's
 * result (SPEC §6) and which exit code it maps to.
 */
import type { PlaybookResult, TerminalStatus } from '../index.js';
import { oneLine, shellQuote } from './output.js';
import type { Output } from './output.js';

/**
 * Exit code of a run outcome (docs/cli.md "Exit codes"): 0 when the run
 * completed or paused at an approval gate (both are expected resting points),
 * 1 when it failed or was cancelled, 2 when a node exceeded its iteration cap.
 */
export function exitCodeOf(status: TerminalStatus): number {
  switch (status) {
    case 'completed':
    case 'pending_approval':
      return 0;
    case 'exceeded_iteration_cap':
      return 2;
    case 'failed':
    case 'cancelled':
      return 1;
  }
}

/** The command a person runs next, with `--db` when the database is not the default. */
export function cliCommand(dbFlag: string, ...words: string[]): string {
  return ['cantbook', ...(dbFlag === '' ? [] : ['--db', shellQuote(dbFlag)]), ...words].join(' ');
}

/**
 * Prints a result: the §6 object in JSON mode; otherwise the outcome, and for
 * a paused run the token with the exact commands to approve or reject it.
 * Returns the exit code ({@link exitCodeOf}).
 */
export function printResult(out: Output, result: PlaybookResult, dbFlag: string): number {
  out.data(result);
  const id = result.runId;
  switch (result.terminalStatus) {
    case 'completed':
      out.line(`✔ run ${id} completed`);
      out.line(`  context: ${oneLine(JSON.stringify(result.finalContext), 300)}`);
      break;
    case 'pending_approval': {
      const token = result.approvalToken;
      out.line(`⏸ run ${id} is waiting for approval at '${result.pausedNodeId ?? '?'}' (approval ${result.approvalId ?? '?'})`);
      if (token === undefined) {
        out.line(`  the token was printed when the gate opened; list gates with: ${cliCommand(dbFlag, 'approvals', '--pending')}`);
        break;
      }
      out.line(`  token:   ${token}`);
      out.line(`  approve: ${cliCommand(dbFlag, 'approve', token, '--by', '<you>')}`);
      out.line(`  reject:  ${cliCommand(dbFlag, 'reject', token, '--by', '<you>', '--reason', '"<why>"')}`);
      out.line('  The token is shown only once; anyone holding it can decide the gate.');
      break;
    }
    case 'failed':
    case 'cancelled':
    case 'exceeded_iteration_cap': {
      const error = result.errorContext;
      const where = error?.nodeId === undefined ? '' : ` at '${error.nodeId}'`;
      const verb = result.terminalStatus === 'exceeded_iteration_cap' ? 'exceeded its iteration cap' : result.terminalStatus;
      out.line(`✗ run ${id} ${verb}${where}${error ? ` (${error.cause}): ${oneLine(error.error, 400)}` : ''}`);
      out.line(`  details: ${cliCommand(dbFlag, 'show', id)}`);
      break;
    }
  }
  return exitCodeOf(result.terminalStatus);
}
