/**
 * `cantbook verify [runId] [--anchor <runId:seq:hash>].. [--anchors <file>]`:
 * proves stored history (hash chain, seq, replay, projections) for one run or
 * every run, and, given anchors exported earlier, that no anchored history was
 * rewritten or removed. Every verdict carries the run's current head, the
 * anchor to keep for next time.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { formatAnchor, parseAnchor, verifyRun } from '../index.js';
import type { EventStore, RunAnchor } from '../index.js';
import { describeError, messageOf, usageError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { collect, withExamples } from './commandKit.js';

/** One run's verdict (the `--json` shape, inside `{ok, runs}`). */
export interface RunVerdict {
  runId: string;
  ok: boolean;
  problems: { kind: string; seq?: number; message: string }[];
  /** The run's head now, or null when it has no events. */
  head: RunAnchor | null;
  /** `head` as text (`<runId>:<seq>:<hash>`): what `--anchor` takes back. */
  anchor: string | null;
}

/**
 * Registers `verify`. Exit code: 0 when every run verifies (and matches its
 * anchors), 1 when any run has a problem (67 when the named run does not
 * exist, 64 for a malformed anchor or anchors file).
 */
export function registerVerify(program: Command, bind: BindAction): void {
  const verify = program
    .command('verify')
    .description('check hash chains, event order, replay and projections of one run (or all), and anchors kept from earlier')
    .argument('[runId]', 'the run to verify (default: every run)')
    .option('--anchor <runId:seq:hash>', 'a head printed earlier by verify, run or approve: that history must be unchanged (repeatable)', collect, [])
    .option('--anchors <file>', 'a file of anchors, one per line (blank lines and # comments ignored)')
    .addHelpText(
      'after',
      '\nAnyone who can write the database can edit an event and recompute the whole chain; only an anchor\n' +
        'kept elsewhere (verify --json prints every run\'s) shows that. See docs/security.md.\n',
    );
  withExamples(verify, [
    'cantbook verify',
    'cantbook verify 7f1c2a9e-… --json',
    'cantbook verify --json | jq -r ".runs[].anchor" > anchors.txt',
    'cantbook verify --anchors anchors.txt',
  ]);
  verify.action(
    bind(async (ctx, cmd) => {
      const runId = cmd.processedArgs[0] as string | undefined;
      const opts = cmd.opts<{ anchor: string[]; anchors?: string }>();
      const anchors = readAnchors(ctx.cwd, opts.anchor, opts.anchors);
      if (runId !== undefined) {
        const foreign = anchors.find((anchor) => anchor.runId !== runId);
        if (foreign !== undefined) throw usageError(`the anchor ${formatAnchor(foreign)} is for run '${foreign.runId}', not '${runId}'`);
      }
      const verdicts = await ctx.withReadStore(async (store) => (runId === undefined ? verifyAll(store, anchors) : [await verifyOne(store, runId, anchors)]));
      const bad = verdicts.filter((verdict) => !verdict.ok);
      ctx.out.data({ ok: bad.length === 0, runs: verdicts });
      if (verdicts.length === 0) ctx.out.line('no runs to verify');
      for (const verdict of verdicts) {
        ctx.out.line(`${verdict.ok ? '✓' : '✗'} ${verdict.runId}${verdict.ok ? '' : ` (${verdict.problems.length} problem${verdict.problems.length === 1 ? '' : 's'})`}`);
        for (const problem of verdict.problems) ctx.out.line(`    ${problem.seq === undefined ? '' : `seq ${problem.seq} `}${problem.kind}: ${problem.message}`);
      }
      if (verdicts.length > 0) {
        const anchored = anchors.length === 0 ? '' : ` against ${anchors.length} anchor${anchors.length === 1 ? '' : 's'}`;
        ctx.out.line(`${verdicts.length - bad.length} of ${verdicts.length} run${verdicts.length === 1 ? '' : 's'} verified${anchored}${bad.length === 0 ? '' : `; ${bad.length} with problems`}`);
        if (!ctx.out.json) ctx.out.line(`anchors of every run: ${ctx.command('verify', '--json')} (keep them where the database's writers cannot reach)`);
      }
      return bad.length === 0 ? 0 : 1;
    }),
  );
}

/** `--anchor` values and the lines of `--anchors`, parsed; E_USAGE naming the first bad one. */
function readAnchors(cwd: string, given: readonly string[], file: string | undefined): RunAnchor[] {
  const texts: { text: string; where: string }[] = given.map((text) => ({ text, where: '--anchor' }));
  if (file !== undefined) {
    let content: string;
    try {
      content = readFileSync(resolve(cwd, file), 'utf8');
    } catch (error) {
      throw usageError(`cannot read the anchors file '${file}': ${messageOf(error)}`);
    }
    content.split('\n').forEach((line, index) => {
      const text = line.trim();
      if (text !== '' && !text.startsWith('#')) texts.push({ text, where: `${file}:${index + 1}` });
    });
  }
  return texts.map(({ text, where }) => {
    const anchor = parseAnchor(text);
    if (anchor === null) throw usageError(`${where}: '${text}' is not an anchor (expected <runId>:<seq>:<64 hex characters>, as verify --json prints it)`);
    return anchor;
  });
}

/** One run against every anchor given for it (several anchors of one run are all checked). */
async function verifyOne(store: EventStore, runId: string, anchors: readonly RunAnchor[]): Promise<RunVerdict> {
  const own = anchors.filter((anchor) => anchor.runId === runId);
  const results = own.length === 0 ? [await verifyRun(store, runId)] : await Promise.all(own.map((anchor) => verifyRun(store, runId, { anchor })));
  const [first] = results as [Awaited<ReturnType<typeof verifyRun>>];
  const seen = new Set<string>();
  const problems = results.flatMap((result) => result.problems).filter((problem) => {
    const key = `${problem.kind} ${problem.seq ?? ''} ${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { runId, ok: problems.length === 0, problems, head: first.head, anchor: first.head === null ? null : formatAnchor(first.head) };
}

/**
 * Every run, one at a time, so a run whose events cannot even be read is a
 * problem rather than an abort; and every anchored run that is no longer in
 * the store at all (a deleted run is a rewritten history too).
 */
async function verifyAll(store: EventStore, anchors: readonly RunAnchor[]): Promise<RunVerdict[]> {
  const verdicts: RunVerdict[] = [];
  const runIds = await store.listRunIds();
  for (const runId of runIds) {
    try {
      verdicts.push(await verifyOne(store, runId, anchors));
    } catch (error) {
      const { code, message } = describeError(error);
      verdicts.push({ runId, ok: false, problems: [{ kind: 'unreadable', message: `${code}: ${message}` }], head: null, anchor: null });
    }
  }
  const present = new Set(runIds);
  for (const anchor of anchors) {
    if (present.has(anchor.runId) || verdicts.some((verdict) => verdict.runId === anchor.runId)) continue;
    verdicts.push({
      runId: anchor.runId,
      ok: false,
      problems: [{ kind: 'anchor_mismatch', seq: anchor.seq, message: `run '${anchor.runId}' was anchored at event ${anchor.seq}, but it is no longer in this store: its history was removed` }],
      head: null,
      anchor: null,
    });
  }
  return verdicts;
}
