/**
 * Progress of a run as it happens, driven by the runtime's `onEvents` hook
 * (each committed batch of events). On a terminal: one ora spinner per node.
 * Elsewhere: one plain line per finished node, e.g. `✓ version_bump (attempt 1)`.
 * Silent in JSON mode.
 *
 * Child runs (SPEC §12) report through the same hook: the lines of any run but
 * the first one this command saw are labelled with it (`[implement_all.1.2] ✓
 * test (attempt 1)`), so children working at once can be told apart.
 */
import type { Ora, Options as OraOptions } from 'ora';
import type { RunEvent } from '../index.js';
import { oneLine } from './output.js';
import type { Output } from './output.js';

/** A progress display for one command. */
export interface Progress {
  /** Pass as HostOptions.onEvents. */
  onEvents(events: readonly RunEvent[]): void;
  /** Stops any spinner still turning (on errors); safe to call twice. */
  stop(): void;
}

/**
 * Runs a command's work with a progress display, and stops any spinner still
 * turning when the work ends, however it ends.
 */
export async function withProgress<T>(out: Output, work: (progress: Progress) => Promise<T>): Promise<T> {
  const progress = await createProgress(out);
  try {
    return await work(progress);
  } finally {
    progress.stop();
  }
}

/**
 * Creates the progress display for one command. `spinners` defaults to
 * whether stdout is a terminal (see {@link Output.tty}); ora is loaded only
 * then, so scripts and pipes do not pay for it at start-up.
 */
async function createProgress(out: Output, options: { spinners?: boolean } = {}): Promise<Progress> {
  const spinners = !out.json && (options.spinners ?? out.tty);
  const ora: ((options: OraOptions) => Ora) | undefined = spinners ? (await import('ora')).default : undefined;
  let spinner: Ora | undefined;

  /** Ends the spinner with `text`, or prints the plain line; `label` names a child run (see childLabel). */
  const finish = (symbol: 'succeed' | 'fail' | 'info', plain: string, text: string, label = ''): void => {
    if (spinner) {
      spinner[symbol](`${label}${text}`);
      spinner = undefined;
    } else {
      out.line(`${label}${plain} ${text}`);
    }
  };

  // The first run this command reports on; other runs' lines name theirs (see childLabel).
  let firstRunId: string | undefined;

  const show = (event: RunEvent): void => {
    firstRunId ??= event.runId;
    const label = childLabel(firstRunId, event.runId);
    const line = (text: string): void => out.line(`${label}${text}`);
    switch (event.type) {
      case 'RunStarted':
        // A child's start was announced by its parent's ChildRunStarted line: its playbook is what is new.
        line(event.data.parent === undefined ? `run ${event.runId} · playbook ${event.data.playbookName}` : `run of ${event.data.playbookName} started`);
        break;
      case 'NodeStarted':
        if (ora) spinner = ora({ text: `${label}${event.data.nodeId} (attempt ${event.data.attempt})`, stream: out.stdout as NodeJS.WritableStream, discardStdin: false }).start();
        break;
      case 'NodeSucceeded':
        finish('succeed', '✓', `${event.data.nodeId} (attempt ${event.data.attempt})`, label);
        break;
      case 'NodeFailed': {
        const why = event.data.interrupted === true ? `interrupted: ${event.data.error}` : event.data.error;
        finish('fail', '✗', `${event.data.nodeId} (attempt ${event.data.attempt}): ${oneLine(why)}`, label);
        break;
      }
      case 'NodeEscalated':
        line(`↪ ${event.data.from} failed; control goes back to ${event.data.to}`);
        break;
      case 'RunPaused': {
        // An escalation gate (SPEC §13) is marked as one: it sits on a work node, not an approval node.
        const escalation = event.data.escalation === undefined ? '' : ` (escalation on ${event.data.escalation.on})`;
        line(`? ${event.data.nodeId}${escalation}: ${oneLine(event.data.prompt, 400)}`);
        break;
      }
      case 'ApprovalGranted':
        if (event.data.auto === true) line(`✓ ${event.data.nodeId} auto-passed by policy (rule ${event.data.rule ?? 'none'})`);
        else line(`✓ ${event.data.nodeId} approved by ${event.data.approver}`);
        break;
      case 'ApprovalRejected':
        line(`✗ ${event.data.nodeId} rejected by ${event.data.approver}${event.data.reason === '' ? '' : `: ${oneLine(event.data.reason)}`}`);
        break;
      case 'RunResumed':
        line(`▶ resumed after ${event.data.nodeId}`);
        break;
      case 'ChildRunStarted':
        line(`↳ ${event.data.nodeId} started child run ${event.data.childRunId}`);
        break;
      case 'ChildRunSettled': {
        const { status, childRunId, error } = event.data;
        const symbol = status === 'completed' ? '✓' : '✗';
        line(`${symbol} child run ${childRunId} ${status}${status === 'completed' || error === undefined ? '' : `: ${oneLine(error)}`}`);
        break;
      }
      default:
        // RunCompleted / RunFailed / RunCancelled: the command prints the outcome.
        break;
    }
  };

  return {
    onEvents(events) {
      if (out.json) return;
      for (const event of events) show(event);
    },
    stop() {
      spinner?.stop();
      spinner = undefined;
    },
  };
}

/**
 * The label of a progress line of run `runId` when the command first reported
 * on `firstRunId`: none for that run, `[implement_all.1.2] ` for a run whose
 * id extends it (a child's id is `<parentRunId>.<nodeId>.<attempt>.<index>`),
 * `[<runId>] ` for any other (the parent a resumed child continues). Pure.
 */
export function childLabel(firstRunId: string, runId: string): string {
  if (runId === firstRunId) return '';
  return `[${runId.startsWith(`${firstRunId}.`) ? runId.slice(firstRunId.length + 1) : runId}] `;
}
