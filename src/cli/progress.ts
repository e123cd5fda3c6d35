/**
 * Progress of a run as it happens, driven by the runtime's `onEvents` hook
 * (each committed batch of events). On a terminal: one ora spinner per node.
 * Elsewhere: one plain line per finished node, e.g. `✓ version_bump (attempt 1)`.
 * Silent in JSON mode.
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

  const finish = (symbol: 'succeed' | 'fail' | 'info', plain: string, text: string): void => {
    if (spinner) {
      spinner[symbol](text);
      spinner = undefined;
    } else {
      out.line(`${plain} ${text}`);
    }
  };

  const show = (event: RunEvent): void => {
    switch (event.type) {
      case 'RunStarted':
        out.line(`run ${event.runId} · playbook ${event.data.playbookName}`);
        break;
      case 'NodeStarted':
        if (ora) spinner = ora({ text: `${event.data.nodeId} (attempt ${event.data.attempt})`, stream: out.stdout as NodeJS.WritableStream, discardStdin: false }).start();
        break;
      case 'NodeSucceeded':
        finish('succeed', '✓', `${event.data.nodeId} (attempt ${event.data.attempt})`);
        break;
      case 'NodeFailed': {
        const why = event.data.interrupted === true ? `interrupted: ${event.data.error}` : event.data.error;
        finish('fail', '✗', `${event.data.nodeId} (attempt ${event.data.attempt}): ${oneLine(why)}`);
        break;
      }
      case 'NodeEscalated':
        out.line(`↪ ${event.data.from} failed; control goes back to ${event.data.to}`);
        break;
      case 'RunPaused': {
        // An escalation gate (SPEC §13) is marked as one: it sits on a work node, not an approval node.
        const escalation = event.data.escalation === undefined ? '' : ` (escalation on ${event.data.escalation.on})`;
        out.line(`? ${event.data.nodeId}${escalation}: ${oneLine(event.data.prompt, 400)}`);
        break;
      }
      case 'ApprovalGranted':
        if (event.data.auto === true) out.line(`✓ ${event.data.nodeId} auto-passed by policy (rule ${event.data.rule ?? 'none'})`);
        else out.line(`✓ ${event.data.nodeId} approved by ${event.data.approver}`);
        break;
      case 'ApprovalRejected':
        out.line(`✗ ${event.data.nodeId} rejected by ${event.data.approver}${event.data.reason === '' ? '' : `: ${oneLine(event.data.reason)}`}`);
        break;
      case 'RunResumed':
        out.line(`▶ resumed after ${event.data.nodeId}`);
        break;
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
