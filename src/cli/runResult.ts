/**
 * How `run`, `approve`, `reject`, `resume` and `recover` present a run's
 * result (SPEC §6) and which exit code it maps to.
 */
import { formatAnchor, getRunHead, isRedrivable } from '../index.js';
import type { EventStore, PlaybookResult, TerminalStatus } from '../index.js';
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

/** Builds a command line a person can paste as it is: the program, `--db` when needed, then `words`. */
export type CommandLine = (...words: string[]) => string;

/**
 * A {@link CommandLine} for `program` (see {@link programOf}) that adds
 * `--db <path>` when the database is not the default. `words` are printed as
 * given, so placeholders stay as written: `--by "$USER"` pastes into a shell
 * as the user's name (an unquoted `<you>` would be a redirect), and a quoted
 * `"<why>"` as literal text. Pure.
 *
 * @example
 * createCommandLine('cantbook', '')('resume', runId); // 'cantbook resume <runId>'
 */
export function createCommandLine(program: string, dbFlag: string): CommandLine {
  return (...words) => [program, ...(dbFlag === '' ? [] : ['--db', shellQuote(dbFlag)]), ...words].join(' ');
}

/**
 * How a person reaches this CLI, for the commands it prints: `npm run cantbook --`
 * when this process is one of cantbook's own npm scripts that run the CLI
 * (`npm run demo` in a clone, where no `cantbook` is on PATH), else `cantbook`.
 * Pure: reads only the given environment.
 */
export function programOf(env: NodeJS.ProcessEnv): string {
  const ownScript = env.npm_package_name === 'cantbook' && /^node dist\/cli\/main\.js(\s|$)/.test(env.npm_lifecycle_script ?? '');
  return ownScript ? 'npm run cantbook --' : 'cantbook';
}

/** A result with the run's head as it stands after this call (`<runId>:<seq>:<hash>`, docs/security.md). */
export type AnchoredResult = PlaybookResult & { anchor?: string };

/** Adds the run's current head to a result, read from the store the call wrote to. */
export async function withAnchor(store: EventStore, result: PlaybookResult): Promise<AnchoredResult> {
  const head = await getRunHead(store, result.runId);
  return head === null ? result : { ...result, anchor: formatAnchor(head) };
}

/**
 * Prints a result: the §6 object in JSON mode (with `anchor` when known); otherwise the outcome, and for
 * a paused run the token with the exact commands to approve or reject it
 * (built by `command`, so they name the same database).
 * Returns the exit code ({@link exitCodeOf}).
 */
export function printResult(out: Output, result: AnchoredResult, command: CommandLine): number {
  out.data(result);
  const id = result.runId;
  switch (result.terminalStatus) {
    case 'completed':
      out.line(`✔ run ${id} completed`);
      out.line(`  context: ${oneLine(JSON.stringify(result.finalContext), 300)}`);
      break;
    case 'pending_approval': {
      const gates = result.approvals ?? [];
      // A gate inside a child run (SPEC §12) is named with the run that holds it.
      const inRun = (gate: { nodeId: string; runId?: string }): string => (gate.runId === undefined || gate.runId === id ? '' : ` of child run ${gate.runId}`);
      const only = gates.length === 1 ? gates[0] : undefined;
      const where =
        gates.length > 1
          ? `${gates.length} gates (${gates.map((gate) => `'${gate.nodeId}'${inRun(gate)}`).join(', ')})`
          : `'${only?.nodeId ?? result.pausedNodeId ?? '?'}'${only === undefined ? '' : inRun(only)} (approval ${only?.approvalId ?? result.approvalId ?? '?'})`;
      out.line(`⏸ run ${id} is waiting for approval at ${where}`);
      for (const gate of gates.length > 0 ? gates : [{ nodeId: result.pausedNodeId ?? '?', token: result.approvalToken }]) {
        if (gates.length > 1) out.line(`  gate ${gate.nodeId}${inRun(gate)}:`);
        if (gate.token === undefined) {
          out.line(`  the token was printed when the gate opened; list gates with: ${command('approvals', '--pending')}`);
          continue;
        }
        out.line(`  token:   ${gate.token}`);
        out.line(`  approve: ${command('approve', gate.token, '--by', '"$USER"')}`);
        out.line(`  reject:  ${command('reject', gate.token, '--by', '"$USER"', '--reason', '"<why>"')}`);
      }
      if (gates.some((gate) => gate.token !== undefined) || result.approvalToken !== undefined) out.line('  The token is shown only once; anyone holding it can decide the gate.');
      break;
    }
    case 'failed':
    case 'cancelled':
    case 'exceeded_iteration_cap': {
      const error = result.error;
      const where = error?.nodeId === undefined ? '' : ` at '${error.nodeId}'`;
      const verb = result.terminalStatus === 'exceeded_iteration_cap' ? 'exceeded its iteration cap' : result.terminalStatus;
      out.line(`✗ run ${id} ${verb}${where}${error ? ` (${error.cause}): ${oneLine(error.message, 400)}` : ''}`);
      out.line(`  details: ${command('show', id)}`);
      if (result.terminalStatus !== 'cancelled' && isRedrivable(result.error)) out.line(`  retry:   ${command('retry', id)}`);
      break;
    }
  }
  // The head to keep outside the database: `verify --anchor` then detects a rewrite of this history.
  if (result.anchor !== undefined) out.line(`  anchor:  ${result.anchor}`);
  return exitCodeOf(result.terminalStatus);
}

