/**
 * `cantbook verify [runId]`: proves stored history (hash chain, seq, replay,
 * projections) for one run or every run.
 */
import type { Command } from 'commander';
import { verifyRun } from '../index.js';
import type { EventStore } from '../index.js';
import { describeError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';

/** One run's verdict (the `--json` shape, inside `{ok, runs}`). */
export interface RunVerdict {
  runId: string;
  ok: boolean;
  problems: { kind: string; seq?: number; message: string }[];
}

/**
 * Registers `verify`. Exit code: 0 when every run verifies, 1 when any run
 * has a problem (67 when the named run does not exist).
 */
export function registerVerify(program: Command, bind: BindAction): void {
  const verify = program
    .command('verify')
    .description('check hash chains, event order, replay and projections of one run (or all)')
    .argument('[runId]', 'the run to verify (default: every run)');
  withExamples(verify, ['cantbook verify', 'cantbook verify 7f1c2a9e-… --json']);
  verify.action(
    bind(async (ctx, cmd) => {
      const runId = cmd.processedArgs[0] as string | undefined;
      const verdicts = await ctx.withReadStore(async (store) => (runId === undefined ? verifyAll(store) : [await verifyRun(store, runId)]));
      const bad = verdicts.filter((verdict) => !verdict.ok);
      ctx.out.data({ ok: bad.length === 0, runs: verdicts });
      if (verdicts.length === 0) ctx.out.line('no runs to verify');
      for (const verdict of verdicts) {
        ctx.out.line(`${verdict.ok ? '✓' : '✗'} ${verdict.runId}${verdict.ok ? '' : ` (${verdict.problems.length} problem${verdict.problems.length === 1 ? '' : 's'})`}`);
        for (const problem of verdict.problems) ctx.out.line(`    ${problem.seq === undefined ? '' : `seq ${problem.seq} `}${problem.kind}: ${problem.message}`);
      }
      if (verdicts.length > 0) ctx.out.line(`${verdicts.length - bad.length} of ${verdicts.length} run${verdicts.length === 1 ? '' : 's'} verified${bad.length === 0 ? '' : `; ${bad.length} with problems`}`);
      return bad.length === 0 ? 0 : 1;
    }),
  );
}

/** Every run, one at a time, so a run whose events cannot even be read is a problem rather than an abort. */
async function verifyAll(store: EventStore): Promise<RunVerdict[]> {
  const verdicts: RunVerdict[] = [];
  for (const runId of await store.listRunIds()) {
    try {
      verdicts.push(await verifyRun(store, runId));
    } catch (error) {
      const { code, message } = describeError(error);
      verdicts.push({ runId, ok: false, problems: [{ kind: 'unreadable', message: `${code}: ${message}` }] });
    }
  }
  return verdicts;
}
