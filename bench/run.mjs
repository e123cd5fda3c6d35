// `npm run bench` (quick) / `npm run bench -- --full`: runs every bench section in its own
// Node process (a fresh heap and JIT per section, so one section's garbage or warm caches
// never colour another's figures) and prints a table; with `--write` it also rewrites
// docs/performance.md from the figures of this run only. Nothing here is a figure of its own: every number printed
// or written comes from a section's JSON output.
//
//   node bench/run.mjs [--full] [--write] [--profile] [--only=step,langgraph,...] [--render]
//
// The committed document comes from a full run: it is written only on request (`--write`) and
// only by a full run of every section (a quick run never overwrites it). `--only` is for
// working on one section; the document is written only by
// a run of every section. `--render` re-renders the table and the document from the last
// complete run's saved figures (bench/.out/results-<mode>.json) without measuring again.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { benchDir, log, machineFacts, nowMs, outDir, parseArgs, repoDir, round } from './lib/common.mjs';
import { ensureDbosPeer, ensureLangGraphPeer } from './lib/peer.mjs';

const sections = [
  { id: 'step', file: 'stepOverhead.mjs', title: '1. Step overhead vs the raw SQLite limit' },
  { id: 'langgraph', file: 'langgraph.mjs', title: '2. Against LangGraph JS' },
  { id: 'replay', file: 'replay.mjs', title: '3. Replay and resume' },
  { id: 'growth', file: 'growth.mjs', title: '4. Growth with the number of steps' },
  { id: 'concurrency', file: 'concurrency.mjs', title: '5. Concurrency' },
  { id: 'parallel', file: 'parallel.mjs', title: '6. Parallel groups' },
  { id: 'workers', file: 'workers.mjs', title: '7. Workers' },
  { id: 'postgres', file: 'postgres.mjs', title: '8. PostgreSQL' },
  { id: 'children', file: 'childRuns.mjs', title: '9. Child runs' },
];

const args = parseArgs();
const only = [...args.flags].find((f) => f.startsWith('only='))?.slice('only='.length).split(',');
const chosen = only === undefined ? sections : sections.filter((s) => only.includes(s.id));
const writeDoc = only === undefined && args.flags.has('write') && args.mode === 'full';
const docPath = join(repoDir, 'docs', 'performance.md');

const resultsPath = join(outDir, `results-${args.mode}.json`);
const { run, results } = args.flags.has('render') ? savedResults() : await runSections();

function savedResults() {
  try {
    return JSON.parse(readFileSync(resultsPath, 'utf8'));
  } catch {
    log(`--render: no saved figures of a complete ${args.mode} run at ${relative(repoDir, resultsPath)}; run the bench once without --render`);
    process.exit(2);
  }
}

async function runSections() {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  mkdirSync(outDir, { recursive: true });

  // The peer installs (first use only) happen before any timing so they never count.
  let peerInstall = null;
  if (chosen.some((s) => s.id === 'langgraph')) {
    try {
      peerInstall = ensureLangGraphPeer();
    } catch (error) {
      peerInstall = { error: error.message };
      log(`langgraph: ${error.message}`);
    }
  }
  let dbosInstall = null;
  if (chosen.some((s) => s.id === 'postgres')) {
    try {
      dbosInstall = ensureDbosPeer();
    } catch (error) {
      dbosInstall = { error: error.message };
      log(`postgres: ${error.message}`);
    }
  }

  const sectionResults = {};
  const sectionMs = {};
  for (const section of chosen) {
    const out = join(outDir, `${section.id}.json`);
    rmSync(out, { force: true });
    log(`\n== ${section.title} (${args.mode})`);
    const start = nowMs();
    const child = spawnSync(process.execPath, [join(benchDir, section.file), `--${args.mode}`, '--out', out, ...(args.flags.has('profile') ? ['--profile'] : [])], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    sectionMs[section.id] = round(nowMs() - start);
    if (child.status === 0) sectionResults[section.id] = JSON.parse(readFileSync(out, 'utf8'));
    else sectionResults[section.id] = { error: `bench/${section.file} exited with ${child.status ?? child.signal}` };
    log(`== ${section.id}: ${round(sectionMs[section.id] / 1000, 1)} s`);
  }

  const meta = {
    mode: args.mode,
    startedAt: startedAt.toISOString(),
    benchSeconds: round(Object.values(sectionMs).reduce((a, b) => a + b, 0) / 1000, 1),
    sectionSeconds: Object.fromEntries(Object.entries(sectionMs).map(([k, v]) => [k, round(v / 1000, 1)])),
    loadAverage: { before: loadBefore.map((l) => round(l, 2)), after: os.loadavg().map((l) => round(l, 2)) },
    commit: gitCommit(),
    machine: await machineFacts(),
    peerInstall,
    dbosInstall,
  };
  // The raw figures of a complete run, kept for `--render` and for anyone who wants more
  // than the document shows.
  if (only === undefined) writeFileSync(resultsPath, JSON.stringify({ run: meta, results: sectionResults }, null, 2));
  return { run: meta, results: sectionResults };
}

const targets = targetRows(results);
printTable(run, results, targets);
if (writeDoc) {
  writeFileSync(docPath, documentOf(run, results, targets));
  log(`\nwrote ${relative(repoDir, docPath)}`);
} else {
  const why = only !== undefined ? 'only a run of every section writes it' : args.mode !== 'full' ? 'a quick run never overwrites the full-mode report' : 'pass --write to rewrite it';
  log(`\n(docs/performance.md not written: ${why})`);
}

// ---------------------------------------------------------------------------------------

function gitCommit() {
  const git = (...a) => spawnSync('git', a, { cwd: repoDir, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return null;
  // Only the code the benches measure decides whether the figures belong to HEAD.
  const dirty = git('status', '--porcelain', '--', 'src', 'bench', 'package.json', 'package-lock.json').stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? ' (with uncommitted changes)' : ''}`;
}

function num(v, digits = 0) {
  return v === null || v === undefined ? 'n/a' : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function yes(met) {
  return met === true ? '**met**' : met === false ? '**not met**' : met === 'reported' ? 'reported (no threshold)' : 'not measured';
}

function failed(result) {
  return result === undefined || result.error !== undefined;
}

/**
 * One row per target of issue 10 (and the issue-9 parallel group): what was asked, what
 * this run measured, met or not. Earlier targets that are now information only are in
 * infoRows.
 */
function targetRows(r) {
  const rows = [];
  const s = r.step;
  const normal = failed(s) ? undefined : s.results.find((x) => x.synchronous === 'NORMAL');
  rows.push(normal
    ? { target: `sequential ${s.nodes}-node step: runtime / raw baseline of the same rows <= ${s.target.ratioAtMost} (synchronous NORMAL)`, measured: `${num(normal.ratio, 2)} (${num(normal.runtime.usPerStep, 1)} vs ${num(normal.baseline.usPerStep, 1)} µs per step)`, met: normal.ratio <= s.target.ratioAtMost }
    : { target: 'sequential 10-node step: runtime / raw baseline <= 1.3 (synchronous NORMAL)', measured: s?.error ?? 'not run', met: null });
  const c = r.concurrency;
  rows.push(!failed(c)
    ? {
      target: `${num(c.inFlight)} runs in flight (${c.dispatchMs} ms dispatcher): steps/s >= ${c.target.ratioAtLeast} x raw SQLite committing the same events in the same batches`,
      measured: `${num(c.ratio, 2)} (${num(c.runtime.stepsPerSec)} vs ${num(c.raw.stepsPerSec)} steps/s; ${num(c.runtime.appendsPerCommit, 1)} appends per commit; ${num(c.runtime.peakInFlight)} dispatches in flight at once)`,
      met: c.target.met,
    }
    : { target: '1,000 runs in flight (5 ms dispatcher): steps/s >= 0.6 x raw SQLite', measured: c?.error ?? 'not run', met: null });
  const g = r.growth;
  if (!failed(g)) {
    const p = g.target.perStep;
    const d = g.results.find((x) => x.variant === 'distinct keys');
    rows.push({
      target: `per-step time of a ${num(p.largeNodes)}-node run with distinct ${num(g.outputBytes / 1024)} KB outputs <= ${p.ratioAtMost}x that of a ${num(p.smallNodes)}-node run`,
      measured: `${num(p.ratio, 2)}x (${num(d.rows.at(-1).usPerStep, 1)} vs ${num(d.rows[0].usPerStep, 1)} µs per step)`,
      met: p.met,
    });
    rows.push({
      target: `bytes written per run grow no faster than N^${g.target.writtenBytes.exponentAtMost} (distinct ${num(g.outputBytes / 1024)} KB outputs)`,
      measured: `N^${num(g.target.writtenBytes.exponent, 2)} (fitted over N = ${d.rows.map((x) => num(x.nodes)).join(', ')})`,
      met: g.target.writtenBytes.met,
    });
  } else rows.push({ target: 'growth: per-step time 1,000 vs 10 nodes <= 1.5x; bytes written <= N^1.05', measured: g?.error ?? 'not run', met: null });
  const l = r.langgraph;
  const ln = failed(l) ? undefined : l.results.find((x) => x.synchronous === 'NORMAL');
  rows.push(ln
    ? { target: `>= ${l.target.speedupAtLeast}x LangGraph JS runs/s on the same ${l.nodes}-node graph, same process, same durability (synchronous NORMAL)`, measured: `${num(ln.speedup, 1)}x (${num(ln.cantbook.runsPerSec, 1)} vs ${num(ln.langgraph.runsPerSec, 1)} runs/s)`, met: ln.speedup >= l.target.speedupAtLeast }
    : { target: '>= 10x LangGraph JS runs/s', measured: l?.error ?? 'not run', met: null });
  const p = r.replay;
  if (!failed(p) && p.fold && p.longRuns) {
    const f = p.fold;
    rows.push({
      target: `fold >= ${num(f.target.eventsPerSecAtLeast)} events/s in memory (foldRun, runs of ${f.eventsPerRun} events)`,
      measured: `${num(f.eventsPerSec)} events/s (generic XState path: ${num(f.genericXState.eventsPerSec)})`,
      met: f.target.met,
    });
    const lr = p.longRuns;
    rows.push({
      target: `loadRun per event on a ${num(lr.long.eventsPerRun)}-event run <= ${lr.target.load.ratioAtMost}x that on a ${num(lr.short.eventsPerRun)}-event run`,
      measured: `${num(lr.loadRatio, 2)}x (${num(lr.long.loadUsPerEvent, 2)} vs ${num(lr.short.loadUsPerEvent, 2)} µs per event)`,
      met: lr.target.load.met,
    });
    rows.push({
      target: `verifyRun per event <= ${lr.target.verify.ratioAtMost}x loadRun per event (same runs)`,
      measured: `${num(lr.long.verifyOverLoad, 2)}x on the ${num(lr.long.eventsPerRun)}-event run, ${num(lr.short.verifyOverLoad, 2)}x on the ${num(lr.short.eventsPerRun)}-event runs`,
      met: lr.target.verify.met,
    });
  } else rows.push({ target: 'fold >= 1,000,000 events/s; loadRun 10,000 vs 100 events <= 2x; verifyRun <= 2x loadRun', measured: p?.error ?? 'not run', met: null });
  const q = r.parallel;
  if (!failed(q)) {
    rows.push({ target: `a group of ${q.branches} branches <= ${q.target.ratioAtMost}x one branch's time (issue 9)`, measured: `${num(q.ratio, 2)}x (${num(q.group.medianMs, 1)} vs ${num(q.branch.medianMs, 1)} ms; serialised would be ${num(q.serialisedMs)} ms)`, met: q.target.met });
  } else rows.push({ target: 'a group of 8 branches <= 1.5x one branch (issue 9)', measured: q?.error ?? 'not run', met: null });
  rows.push(...workerTargetRows(r.workers));
  rows.push(...postgresTargetRows(r.postgres));
  rows.push(...childRunsTargetRows(r.children));
  return rows;
}

/** Issue 13's child-run row: a map's wall time over the ideal and storage per child run (reported, no threshold). */
function childRunsTargetRows(c) {
  if (failed(c)) return [{ target: 'a map of 100 items over a 3-node child playbook (5 ms dispatcher, max_concurrency 10): wall time / the ideal 150 ms, and storage per child run', measured: c?.error ?? 'not run', met: null }];
  const s = c.sqlite;
  const p = failed(c.postgres) ? null : c.postgres;
  return [{
    target: `a map of ${num(c.items)} items over a ${c.chain}-node child playbook (${c.dispatchMs} ms dispatcher, max_concurrency ${c.maxConcurrency}): wall time / the ideal ${num(c.idealMs)} ms (${num(c.idealMs / (c.chain * c.dispatchMs))} waves × ${c.chain} × ${c.dispatchMs} ms), and storage per child run`,
    measured: `${num(s.tree5.overIdeal, 2)}x on SQLite (${num(s.tree5.medianMs, 1)} ms; the same nodes as ${num(c.items)} root runs, ${c.maxConcurrency} at a time: ${num(s.roots5.overIdeal, 2)}x)${p ? `, ${num(p.tree5.overIdeal, 2)}x on PostgreSQL` : ''}; ` +
      `${num(s.storage.treeBytesPerChild)} bytes and ${num(s.detail.child.eventsPerRun)} + ${num(s.detail.parent.perChild.events)} events (its own, its parent's) per child run, against ${num(s.storage.rootBytesPerRun)} bytes and ${num(s.detail.rootRun.eventsPerRun)} events per root run of the same nodes`,
    met: 'reported',
  }];
}

/** Issue 12's two PostgreSQL rows: workers' scaling on one server (reported), and DBOS Transact's throughput. */
function postgresTargetRows(p) {
  if (failed(p)) {
    return [
      { target: 'steps/s with 1, 2, 4, 8 workers on one PostgreSQL (scaling ratio vs 1 worker)', measured: p?.error ?? 'not run', met: null },
      { target: 'cantbook on PostgreSQL >= DBOS Transact throughput, same 10-step workflow, same server, same durability', measured: p?.error ?? 'not run', met: null },
    ];
  }
  const h = p.peerRows.find((x) => x.inFlight === p.target.dbos.inFlight);
  return [
    {
      target: `steps/s with ${p.rows.map((x) => x.processes).join(', ')} workers on one PostgreSQL (scaling ratio vs 1 worker)`,
      measured: `${p.rows.map((x) => num(x.stepsPerSec)).join(' / ')} steps/s (x${p.rows.map((x) => num(x.vsOne, 2)).join(' / ')}; ${p.perWorker} runs in flight per worker)`,
      met: 'reported',
    },
    {
      target: `cantbook on PostgreSQL >= DBOS Transact throughput, same ${p.nodes}-step workflow, same server, same durability (${num(h.inFlight)} in flight)`,
      measured: `${num(h.ratio, 2)}x (${num(h.cantbook.stepsPerSec)} vs ${num(h.dbos.stepsPerSec)} steps/s, executePlaybook vs DBOS workflows in one process; ${h.workers ? `${h.workers.processes} workers: ${num(h.workers.stepsPerSec)} steps/s, ${num(h.workers.ratio, 2)}x` : ''})`,
      met: p.target.dbos.met,
    },
  ];
}

/** The workers section's one requirement, "it must not busy-poll": idle, and with every slot busy. */
function workerTargetRows(w) {
  if (failed(w)) return [{ target: 'a waiting worker does not busy-poll', measured: w?.error ?? 'not run', met: null }];
  const looks = (q) => `${num(q.cpuPercentOfCore, 2)} % of a core, ${num(q.calls.nextWakeAt?.calls ?? 0)} sleeps between looks for work in ${num(q.windowMs / 1000, 1)} s`;
  return [
    { target: `an idle worker (empty store) does not busy-poll: at most one look for work per pollMs (${num(w.pollMs)} ms), < ${w.target.idle.cpuPercentAtMost} % of a core`, measured: looks(w.idle), met: w.target.idle.met },
    { target: `a worker with all ${w.perWorker} slots busy and runs waiting does not busy-poll either (same bounds)`, measured: looks(w.saturated), met: w.target.saturated.met },
  ];
}

/** Earlier targets and side figures, kept as information: no verdict counts them. */
function infoRows(r) {
  const rows = [];
  if (!failed(r.step)) {
    for (const x of r.step.results.filter((y) => y.synchronous !== 'NORMAL')) rows.push([`runtime / raw baseline (synchronous ${x.synchronous})`, `${num(x.ratio, 2)} (${num(x.runtime.usPerStep, 1)} vs ${num(x.baseline.usPerStep, 1)} µs per step)`]);
  }
  if (!failed(r.langgraph)) {
    for (const x of r.langgraph.results.filter((y) => y.synchronous !== 'NORMAL')) rows.push([`speed-up over LangGraph JS (synchronous ${x.synchronous})`, `${num(x.speedup, 1)}x (${num(x.cantbook.runsPerSec, 1)} vs ${num(x.langgraph.runsPerSec, 1)} runs/s)`]);
  }
  const p = r.replay;
  if (!failed(p)) {
    rows.push([`readAll + fold of a whole file (issue 8 asked >= ${num(p.target.eventsPerSecAtLeast)} events/s)`, `${num(p.readAllFold.eventsPerSec)} events/s (${num(p.totalEvents)} events)`]);
    rows.push(['resume latency, big / tiny database (issue 8 asked <= 1.5)', `x${num(p.resume.ratioResume, 2)} (${num(p.resume.big.resumeMs, 2)} ms with ${num(p.resume.databaseEvents.big)} events in the file vs ${num(p.resume.tiny.resumeMs, 2)} ms with ${num(p.resume.databaseEvents.tiny)})`]);
  }
  const g = r.growth;
  if (!failed(g)) rows.push([`database bytes per run (issue 8 asked <= N^${g.target.stored.exponentAtMost})`, g.results.map((x) => `${x.variant}: N^${num(x.exponents.storedBytesPerRun, 2)}`).join('; ')]);
  return rows;
}

function table(header, rows) {
  const cells = [header, ...rows].map((row) => row.map((c) => String(c)));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row) => row.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function printTable(meta, r, rows) {
  const out = [];
  out.push(`\ncantbook bench, ${meta.mode} mode, ${meta.startedAt} (${meta.benchSeconds} s of bench time)`);
  out.push(`${meta.machine.cpuModel}, ${meta.machine.cores} cores, Node ${meta.machine.node}, SQLite ${meta.machine.sqlite}; load average ${meta.loadAverage.before.join(' ')} -> ${meta.loadAverage.after.join(' ')}\n`);
  if (!failed(r.step)) {
    out.push(table(['1. step overhead', 'runs', 'runs/s', 'µs/step', 'commits/step', 'bytes/step', 'ratio'], r.step.results.flatMap((x) => [
      [`runtime ${x.synchronous}`, x.runs, num(x.runtime.runsPerSec, 1), num(x.runtime.usPerStep, 1), num(x.runtime.commitsPerStep, 2), num(x.runtime.bytesPerStep), num(x.ratio, 2)],
      [`baseline ${x.synchronous}`, x.runs, num(x.baseline.runsPerSec, 1), num(x.baseline.usPerStep, 1), num(x.baseline.commitsPerStep, 2), num(x.baseline.bytesPerStep), ''],
    ])));
    out.push('');
  }
  if (!failed(r.langgraph)) {
    out.push(table(['2. vs LangGraph JS', 'runs', 'runs/s', 'µs/step', 'commits/step', 'bytes/step', 'speed-up'], r.langgraph.results.flatMap((x) => [
      [`cantbook ${x.synchronous}`, x.runs, num(x.cantbook.runsPerSec, 1), num(x.cantbook.usPerStep, 1), num(x.cantbook.commitsPerStep, 2), num(x.cantbook.bytesPerStep), `${num(x.speedup, 1)}x`],
      [`LangGraph ${x.synchronous}`, x.runs, num(x.langgraph.runsPerSec, 1), num(x.langgraph.usPerStep, 1), num(x.langgraph.commitsPerStep, 2), num(x.langgraph.bytesPerStep), ''],
    ])));
    out.push('');
  }
  if (!failed(r.replay)) {
    const p = r.replay;
    const lr = p.longRuns;
    out.push(table(['3. replay', 'value'], [
      [`foldRun in memory, runs of ${p.fold.eventsPerRun} events`, `${num(p.fold.eventsPerSec)} events/s (generic XState ${num(p.fold.genericXState.eventsPerSec)})`],
      [`loadRun, ${num(lr.long.eventsPerRun)}-event run`, `${num(lr.long.loadUsPerEvent, 2)} µs/event (read ${num(lr.long.readUsPerEvent, 2)}, fold ${num(lr.long.foldUsPerEvent, 2)}); verifyRun ${num(lr.long.verifyUsPerEvent, 2)}`],
      [`loadRun, ${num(lr.short.eventsPerRun)}-event runs`, `${num(lr.short.loadUsPerEvent, 2)} µs/event (read ${num(lr.short.readUsPerEvent, 2)}, fold ${num(lr.short.foldUsPerEvent, 2)}); verifyRun ${num(lr.short.verifyUsPerEvent, 2)}`],
      [`readAll + fold of ${num(p.totalEvents)} events`, `${num(p.readAllFold.eventsPerSec)} events/s`],
      ['loadRun, run by run', `${num(p.loadRunPerRun.eventsPerSec)} events/s`],
      [`resume, ${num(p.resume.databaseEvents.big)}-event file`, `${num(p.resume.big.resumeMs, 2)} ms (load+fold ${num(p.resume.big.loadFoldMs, 3)} ms)`],
      [`resume, ${num(p.resume.databaseEvents.tiny)}-event file`, `${num(p.resume.tiny.resumeMs, 2)} ms (load+fold ${num(p.resume.tiny.loadFoldMs, 3)} ms)`],
    ]));
    out.push('');
  }
  if (!failed(r.growth)) {
    out.push(table(['4. growth', 'nodes', 'runs', 'stored B/step', 'written B/step', 'µs/step'], r.growth.results.flatMap((x) => x.rows.map((row) => [
      x.variant, row.nodes, row.runs, num(row.storedBytesPerStep), num(row.writtenBytesPerStep), num(row.usPerStep, 1),
    ]))));
    out.push('');
  }
  if (!failed(r.concurrency)) {
    const c = r.concurrency;
    out.push(table(['5. concurrency', 'steps/s', 'wall ms', 'CPU ms', 'commits', 'ratio'], [
      [`${num(c.inFlight)} runs in flight`, num(c.runtime.stepsPerSec), num(c.runtime.ms), num(c.runtime.cpuMs), `${num(c.runtime.commitsPerRound)} (${num(c.runtime.appendsPerCommit, 1)} appends each)`, num(c.ratio, 2)],
      ['raw SQLite, same rows and batches', num(c.raw.stepsPerSec), num(c.raw.ms), '', num(c.runtime.commitsPerRound), ''],
    ]));
    out.push('');
  }
  if (!failed(r.parallel)) {
    const q = r.parallel;
    out.push(table(['6. parallel', 'median ms', 'ratio'], [
      [`one branch (${q.chain} nodes)`, num(q.branch.medianMs, 2), ''],
      [`group of ${q.branches} branches`, num(q.group.medianMs, 2), num(q.ratio, 2)],
    ]));
    out.push('');
  }
  if (!failed(r.workers)) {
    const w = r.workers;
    out.push(table(['7. workers', 'in flight', 'runs/s', 'inline runs/s', 'ratio', 'write tx ms/run', 'longest tx ms'], [
      ...w.rows.flatMap((x) => [
        [`${x.processes} process${x.processes > 1 ? 'es' : ''} x ${w.perWorker}`, x.inFlight, num(x.workers.runsPerSec, 1), num(x.inline.runsPerSec, 1), num(x.ratio, 2), `${num(x.workers.writeTx.msPerRun, 2)} (inline ${num(x.inline.writeTx.msPerRun, 2)})`, num(x.workers.writeTx.maxMs, 1)],
        ...(x.ownFiles === undefined ? [] : [[`  control: a file each`, x.inFlight, num(x.ownFiles.runsPerSec, 1), '', num(x.ownFiles.ratio, 2), num(x.ownFiles.writeTx.msPerRun, 2), num(x.ownFiles.writeTx.maxMs, 1)]]),
      ]),
      ['sequential executePlaybook', 1, '', num(w.sequential.runsPerSec, 1), '', '', ''],
      ['idle worker', '', `${num(w.idle.cpuPercentOfCore, 2)} % of a core`, `${num(w.idle.calls.nextWakeAt?.calls ?? 0)} sleeps in ${num(w.idle.windowMs / 1000, 1)} s`, '', '', ''],
      ['saturated worker', w.perWorker, `${num(w.saturated.cpuPercentOfCore, 2)} % of a core`, `${num(w.saturated.calls.nextWakeAt?.calls ?? 0)} sleeps in ${num(w.saturated.windowMs / 1000, 1)} s`, '', '', ''],
    ]));
    out.push(`scaling: 2 vs 1 process ${num(w.scaling['2vs1'], 2)}, 4 vs 1 ${num(w.scaling['4vs1'], 2)}`);
    out.push('');
  }
  if (!failed(r.postgres)) {
    const p = r.postgres;
    const ps = (x) => `${num(x.perStep.queries, 1)} / ${num(x.perStep.writeTransactions, 2)} / ${num(x.perStep.walBytes)}`;
    const cpu = (x) => `${num(x.perStep.clientCpuMs, 2)} / ${x.perStep.serverCpuMs === null ? 'n/a' : num(x.perStep.serverCpuMs, 2)}`;
    out.push(table(['8. PostgreSQL', 'in flight', 'steps/s', 'ratio', 'queries / write tx / WAL B per step', 'CPU ms/step client / server'], [
      ...p.rows.map((x) => [`${x.processes} worker process${x.processes > 1 ? 'es' : ''} x ${p.perWorker}`, x.inFlight, num(x.stepsPerSec), num(x.vsOne, 2), ps(x), cpu(x)]),
      ...p.peerRows.flatMap((x) => [
        ['cantbook executePlaybook', x.inFlight, num(x.cantbook.stepsPerSec), `${num(x.ratio, 2)}x DBOS`, ps(x.cantbook), cpu(x.cantbook)],
        ['DBOS Transact workflows', x.inFlight, num(x.dbos.stepsPerSec), '', ps(x.dbos), cpu(x.dbos)],
        [`raw durable commits, ${x.inFlight} connection${x.inFlight > 1 ? 's' : ''}`, x.inFlight, `${num(x.raw.commitsPerSec)} commits/s`, '', '', ''],
      ]),
    ]));
    out.push('');
  }
  if (!failed(r.children)) {
    const c = r.children;
    const kindRows = (label, x) => [
      [`${label}: map tree, ${c.dispatchMs} ms dispatcher`, num(x.tree5.medianMs, 1), num(x.tree5.overIdeal, 2), num(x.tree5.cpuMs), x.tree5.appends === null ? '' : `${num(x.tree5.appends)} / ${num(x.tree5.commits)}`],
      [`${label}: ${c.items} root runs, ${c.maxConcurrency} at a time`, num(x.roots5.medianMs, 1), num(x.roots5.overIdeal, 2), num(x.roots5.cpuMs), x.roots5.appends === null ? '' : `${num(x.roots5.appends)} / ${num(x.roots5.commits)}`],
      [`${label}: map tree, answered at once`, num(x.tree0.medianMs, 1), num(x.tree0.overIdeal, 2), num(x.tree0.cpuMs), x.tree0.appends === null ? '' : `${num(x.tree0.appends)} / ${num(x.tree0.commits)}`],
      [`${label}: root runs, answered at once`, num(x.roots0.medianMs, 1), num(x.roots0.overIdeal, 2), num(x.roots0.cpuMs), x.roots0.appends === null ? '' : `${num(x.roots0.appends)} / ${num(x.roots0.commits)}`],
    ];
    out.push(table(['9. child runs', 'median ms', `/ ideal ${c.idealMs} ms`, 'CPU ms', 'appends / commits'], [...kindRows('SQLite', c.sqlite), ...(failed(c.postgres) ? [] : kindRows('PostgreSQL', c.postgres))]));
    const st = c.sqlite.storage;
    const dt = c.sqlite.detail;
    out.push(`storage (SQLite): ${num(st.treeBytesPerChild)} B per child (${num(st.treeBytesPerRun)} per run of the tree) vs ${num(st.rootBytesPerRun)} B per root run (${num(st.childOverRoot, 2)}x); events ${dt.child.eventsPerRun} per child + ${num(dt.parent.perChild.events)} in the parent, ${dt.rootRun.eventsPerRun} per root run` +
      (failed(c.postgres) ? `; PostgreSQL not measured: ${c.postgres?.error ?? 'not run'}` : `; PostgreSQL ${num(c.postgres.storage.treeBytesPerChild)} vs ${num(c.postgres.storage.rootBytesPerRun)} B`));
    out.push('');
  }
  out.push(table(['target', 'measured', 'verdict'], rows.map((t) => [t.target, t.measured, t.met === true ? 'met' : t.met === false ? 'NOT met' : t.met === 'reported' ? 'reported' : 'not measured'])));
  for (const [id, res] of Object.entries(r)) if (res.error) out.push(`\n${id}: ${res.error}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// --- docs/performance.md --------------------------------------------------------------

function mdTable(header, rows) {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function documentOf(meta, r, rows) {
  const m = meta.machine;
  const d = [];
  d.push('# Performance');
  d.push('');
  d.push(`> Generated by \`npm run bench${meta.mode === 'full' ? ' -- --full' : ''}\` (${meta.mode} mode) on ${meta.startedAt.slice(0, 10)}. Every figure below comes from that one run;`);
  d.push('> do not edit by hand: re-run the bench to update it (see [How to reproduce](#how-to-reproduce)).');
  d.push('');
  d.push('## Targets');
  d.push('');
  d.push(mdTable(['target', 'measured', 'verdict'], rows.map((t) => [t.target, t.measured, yes(t.met)])));
  d.push('');
  const missed = rows.filter((t) => t.met === false).length;
  const unmeasured = rows.filter((t) => t.met === null).length;
  const reported = rows.filter((t) => t.met === 'reported').length;
  d.push(`${rows.length - missed - unmeasured - reported} of ${rows.length} targets met${missed ? `, ${missed} not met` : ''}${unmeasured ? `, ${unmeasured} not measured` : ''}${reported ? `, ${reported} reported without a threshold` : ''}. ` +
    'Each ratio is measured within one run of the bench, its two sides in one process, alternating, medians (each section says how). The sections below give the figures, the method, and the measured reason for each miss.');
  d.push('');
  const info = infoRows(r);
  if (info.length > 0) {
    d.push('Other figures (earlier targets, now information only):');
    d.push('');
    d.push(mdTable(['figure', 'measured'], info));
    d.push('');
  }
  d.push('## Machine');
  d.push('');
  d.push(mdTable(['', ''], [
    ['CPU', `${m.cpuModel}, ${m.cores} cores (logical), ${m.memoryGiB} GiB RAM`],
    ['OS', m.platform],
    ['Node', m.node],
    ['SQLite', `${m.sqlite} (better-sqlite3 ${m.betterSqlite3}); file system ${m.filesystem ?? 'unknown'}`],
    ['xstate', m.xstate],
    ['date', meta.startedAt],
    ['commit', meta.commit ?? 'unknown'],
    ['mode', `${meta.mode}: ${meta.benchSeconds} s of bench time (${Object.entries(meta.sectionSeconds).map(([k, v]) => `${k} ${v} s`).join(', ')})`],
    ['load average (1/5/15 min)', `${meta.loadAverage.before.join(' / ')} before, ${meta.loadAverage.after.join(' / ')} after`],
  ]));
  d.push('');
  d.push(`A load average near or above the core count (${m.cores}) means other processes shared the CPU during the run and the figures are noisier and slower than on a quiet machine. Ratios are measured within one process and alternate their two sides round by round, so they suffer less than absolute rates.`);
  d.push('');
  d.push(...stepSection(r.step));
  d.push(...langGraphSection(r.langgraph, failed(r.step) ? undefined : r.step));
  d.push(...replaySection(r.replay));
  d.push(...growthSection(r.growth));
  d.push(...concurrencySection(r.concurrency, meta.loadAverage.after[0], m.cores));
  d.push(...parallelSection(r.parallel));
  d.push(...workersSection(r.workers, meta.loadAverage.after[0], m.cores));
  d.push(...postgresSection(r.postgres, m.cores));
  d.push(...childRunsSection(r.children, meta.loadAverage.after[0], m.cores));
  d.push('## How to reproduce');
  d.push('');
  d.push('```sh');
  d.push('npm ci                    # once; cantbook itself');
  d.push('npm run bench                      # quick mode, about two minutes; prints the table, never writes this file');
  d.push('npm run bench -- --full --write    # the sizes the issues ask for (1,000 runs per sample and in flight, 1,000-node growth runs, a 10,000-event run, 1,000,000 events); rewrites this file');
  d.push('```');
  d.push('');
  d.push('`npm run bench` builds `dist/` and runs `bench/run.mjs`, which runs each section in its own Node process and writes the raw figures to `bench/.out/results-<mode>.json`. ' +
    'The first run installs the LangGraph peer into `bench/peers/langgraph/node_modules` (`npm ci --prefix bench/peers/langgraph`, which compiles better-sqlite3: a minute or more, not counted as bench time) and the DBOS Transact peer into `bench/peers/dbos/node_modules` (`npm ci --prefix bench/peers/dbos`, pure JavaScript, seconds). ' +
    'Section 8 needs a PostgreSQL server: with the server binaries installed (`apt-get install postgresql`) it starts a throwaway durable cluster of its own (`scripts/pgTestCluster.sh start DIR --durable`) and removes it at the end; `CANTBOOK_BENCH_POSTGRES_URL=postgres://...` points it at a server of yours instead (it works in schemas `cantbook_bench_<pid>_*` and drops them). Section 9 takes its PostgreSQL server the same way and, when none can be had, reports SQLite alone. ' +
    'The step workload is always CPU-profiled; `npm run bench -- --full --profile` also profiles the whole-file replay (it takes minutes); profiles are kept under `bench/.out/prof` and summarised here. `--only=step,replay` runs some sections without rewriting this file, `--render --write` rewrites it from the last complete full run\'s saved figures. ' +
    'A section can also run alone: `node bench/stepOverhead.mjs [--full]` prints its JSON. Quick mode uses smaller sizes (fewer runs, a 300-node largest growth run, a 2,000-event long run, 100,000 events), so its figures check that the benches work and are not the targets\' own.');
  d.push('');
  d.push('The benches are not part of `npm test` or CI: timing assertions in tests are flaky, and the figures need a quiet machine.');
  d.push('');
  return `${d.join('\n')}\n`;
}

function notMeasured(res) {
  return ['', `Not measured in this run: ${res?.error ?? 'the section did not run'}.`, ''];
}

function profileLines(profile, what) {
  if (!profile || profile.error) return [];
  return [
    `A CPU profile of ${what} (\`node --cpu-prof\`, ${num(profile.totalMs)} ms sampled, kept as \`${profile.file}\`), by where the time is spent. A sample counts for the first category found walking from the sampled function towards the root, so time inside the store's SQLite calls (including \`COMMIT\`, which is where the WAL is written) counts as store:`,
    '',
    mdTable(['category', 'share'], profile.categories.filter((c) => c.percent >= 1).map((c) => [c.name, `${num(c.percent, 1)} %`])),
    '',
  ];
}

function stepSection(s) {
  const d = ['## 1. Step overhead vs the raw SQLite limit'];
  if (failed(s)) return [...d, ...notMeasured(s)];
  d.push('');
  d.push(`Runs of a ${s.nodes}-node linear playbook with a no-op dispatcher (each run: ${s.eventsPerRun} events in ${s.commitsPerRun} commits), on a SQLite file in WAL mode, against a **baseline** in the same process that does only the better-sqlite3 work the runtime must do at minimum. ` +
    'The baseline replays the exact rows the store was asked to write for one recorded run — the same commits (`BEGIN IMMEDIATE` … `COMMIT`), the same events with data, timestamps and hashes of the same bytes, the pinned playbook row, and one `runs` projection upsert per commit (the status update only when the status changes) — under a new run id each time, into the same schema (created by `openSqliteStore`). ' +
    'All its strings are prepared before timing, so it measures only statement execution and commits: no state machine, no JSON, no hashing. ' +
    'Each sample uses a fresh file; runtime and baseline alternate; the table shows medians, and both sides are checked to have stored the same number of events and grown the file by the same bytes.');
  d.push('');
  d.push(mdTable(['synchronous', 'runs × samples', 'runtime runs/s', 'runtime µs/step', 'baseline runs/s', 'baseline µs/step', 'commits/step', 'file bytes/step', 'bytes written/step', 'runtime/baseline', 'per round'],
    s.results.map((x) => [x.synchronous, `${num(x.runs)} × ${x.rounds}`, num(x.runtime.runsPerSec, 1), num(x.runtime.usPerStep, 1), num(x.baseline.runsPerSec, 1), num(x.baseline.usPerStep, 1),
      `${num(x.runtime.commitsPerStep, 2)} (both)`, `${num(x.runtime.bytesPerStep)} / ${num(x.baseline.bytesPerStep)}`, `${num(x.runtime.writtenBytesPerStep)} / ${num(x.baseline.writtenBytesPerStep)}`, `**${num(x.ratio, 2)}**`,
      (x.roundRatios ?? []).map((v) => num(v, 2)).join(', ')])));
  d.push('');
  d.push('µs/step is a run\'s wall time divided by its node steps (so `RunStarted`/`RunCompleted` are included). File bytes/step is how much the database file grew (after a WAL checkpoint); bytes written/step is what the process handed to the OS (WAL frames and checkpoints, from `/proc/self/io`). Runtime / baseline figures are given as a pair. ' +
    'runtime/baseline is the ratio of the medians (the verdict uses it); "per round" gives each round\'s own ratio, whose two sides ran back to back — when they scatter widely, other processes were competing for the CPU or the disk.');
  d.push('');
  const normal = s.results.find((x) => x.synchronous === 'NORMAL');
  const k = s.breakdown;
  if (normal && k) {
    const extra = normal.runtime.usPerStep - normal.baseline.usPerStep;
    d.push(`With \`synchronous = NORMAL\` a step costs ${num(normal.runtime.usPerStep, 1)} µs, of which the storage limit accounts for ${num(normal.baseline.usPerStep, 1)} µs; the other ${num(extra, 1)} µs is the runtime's own work: folding each recorded event through the machine, the hash chain, JSON encoding of the events and of the projection row, and the host loop. ` +
      `Measured alone on the same run's events in memory, the library's fold (\`foldRun\`) costs ${num(k.foldUsPerStep, 1)} µs per step and the hash chain ${num(k.hashUsPerStep, 1)} µs. ` +
      `For reference, xstate's \`transition()\` wrapper, which builds a new actor (and with it the machine's initial snapshot) on every call, costs ${num(k.transitionWrapperUsPerStep, 1)} µs per step for ${k.wrapperSameSnapshot ? 'the same snapshots' : 'DIFFERENT snapshots (foldRun and xstate disagree: a bug)'}.`);
    d.push('');
    if (normal.ratio > s.target.ratioAtMost) {
      d.push(`The ${s.target.ratioAtMost}× target (\`NORMAL\`; \`FULL\` is information) is missed: ${num(normal.ratio, 2)}×; the fold and the hash chain explain ${num(k.foldUsPerStep + k.hashUsPerStep, 1)} of the ${num(extra, 1)} µs; the rest is JSON encoding, the host loop's promises and garbage collection (see the profile below).`);
      d.push('');
    }
  }
  d.push(...profileLines(s.profile, 'the runtime doing the NORMAL workload above'));
  return d;
}

function langGraphSection(l, stepResults) {
  const d = ['## 2. Against LangGraph JS'];
  if (failed(l)) return [...d, ...notMeasured(l)];
  d.push('');
  d.push(`The same ${l.nodes}-node linear graph of no-op nodes in LangGraph JS (\`@langchain/langgraph\` ${l.peer.langgraph}) with its SQLite checkpointer (\`@langchain/langgraph-checkpoint-sqlite\` ${l.peer.checkpointSqlite}, better-sqlite3 ${l.peer.betterSqlite3}, SQLite ${l.peer.sqlite}), ` +
    `run in the same process as cantbook, alternating round by round on fresh files. Both connections use WAL and the same \`synchronous\`; LangGraph runs with \`durability: '${l.peer.durability}'\`, so each step's checkpoint is committed before the next step starts — the guarantee cantbook gives by committing \`NodeStarted\` before it dispatches. ` +
    'Each run is a new LangGraph thread, as each cantbook run is a new event stream. The peer lives in `bench/peers/langgraph` with its own lock file, so cantbook\'s install never carries it.');
  d.push('');
  d.push(mdTable(['synchronous', 'runs × samples', 'cantbook runs/s', 'LangGraph runs/s', 'cantbook µs/step', 'LangGraph µs/step', 'commits/step (cantbook / LangGraph)', 'file bytes/step (cantbook / LangGraph)', 'speed-up', 'per round'],
    l.results.map((x) => [x.synchronous, `${num(x.runs)} × ${x.rounds}`, num(x.cantbook.runsPerSec, 1), num(x.langgraph.runsPerSec, 1), num(x.cantbook.usPerStep, 1), num(x.langgraph.usPerStep, 1),
      `${num(x.cantbook.commitsPerStep, 2)} / ${num(x.langgraph.commitsPerStep, 2)}`, `${num(x.cantbook.bytesPerStep)} / ${num(x.langgraph.bytesPerStep)}`, `**${num(x.speedup, 1)}×**`,
      (x.roundSpeedups ?? []).map((v) => `${num(v, 1)}×`).join(', ')])));
  d.push('');
  const n = l.results.find((x) => x.synchronous === 'NORMAL');
  d.push(`LangGraph commits ${n ? num(n.langgraph.commitsPerStep, 2) : 'about 2.3'} times per step (each task's writes, then the step's checkpoint); cantbook ${n ? num(n.cantbook.commitsPerStep, 2) : 'about 1.1'} (a node's result together with the next decision). ` +
    'With `synchronous = FULL` each commit also waits for an fsync, a cost both sides pay per commit, so the more the disk dominates, the closer the speed-up gets to the ratio of their commits.');
  d.push('');
  const limit = stepResults?.results.find((x) => x.synchronous === 'NORMAL');
  if (n && limit && n.cantbook.usPerStep > limit.runtime.usPerStep * 1.2) {
    d.push(`cantbook's step here (${num(n.cantbook.usPerStep, 1)} µs) is slower than in section 1 (${num(limit.runtime.usPerStep, 1)} µs, same workload in a process of its own); here it shares one process and one heap with LangGraph. The speed-up is computed from the figures of this section.`);
    d.push('');
  }
  const want = l.target.speedupAtLeast;
  if (n && n.speedup < want) {
    const needed = n.langgraph.usPerStep / want;
    d.push(`The ${want}× target (\`NORMAL\`; \`FULL\` is information) is missed: cantbook is ${num(n.speedup, 1)}× faster with \`NORMAL\`. Being ${want}× faster than LangGraph's ${num(n.langgraph.usPerStep, 1)} µs per step means at most ${num(needed, 1)} µs per step` +
      (limit ? `, while in section 1 the raw better-sqlite3 work of one step alone — the baseline, with no runtime at all — took ${num(limit.baseline.usPerStep, 1)} µs on this machine in this run. ${needed < limit.baseline.usPerStep ? 'So on this machine the target lies below cantbook\'s own storage floor: even a runtime with no overhead at all, writing cantbook\'s rows with one commit per step (durable before dispatch), could not reach it.' : 'That is above the storage limit, so the gap is the runtime\'s own work per step (section 1).'}` : '.'));
    d.push('');
  }
  return d;
}

function replaySection(p) {
  const d = ['## 3. Replay and resume'];
  if (failed(p)) return [...d, ...notMeasured(p)];
  d.push('');
  const f = p.fold;
  const evolveRate = p.phases.find((x) => x.phase.startsWith('evolve only'))?.eventsPerSec;
  if (f) {
    d.push(`**Fold.** \`foldRun\` (the library's fold, from \`dist/\`) over ${num(f.runs)} runs of ${f.eventsPerRun} events of the 49-node playbook, already read into memory (no SQLite, no JSON, no hash check): ${num(f.events)} events per pass, ${f.rounds} passes alternating with the generic XState path (${f.genericXState.name ?? 'machine.transition with one inert actor scope'}: what \`foldRun\` did before a compiled transition table), medians. ` +
      `The two reach ${f.genericXState.sameSnapshot ? 'the same' : 'DIFFERENT (a bug)'} snapshots.`);
    d.push('');
    d.push(mdTable(['fold', 'events/s', 'µs/event', 'per pass (events/s)'], [
      ['**foldRun**', `**${num(f.eventsPerSec)}**`, num(f.usPerEvent, 3), f.samplesEventsPerSec.map((v) => num(v)).join(', ')],
      [`generic XState path: ${f.genericXState.name ?? 'machine.transition'}`, num(f.genericXState.eventsPerSec), num(f.genericXState.usPerEvent, 3), ''],
    ]));
    d.push('');
    d.push(`Target ≥ ${num(f.target.eventsPerSecAtLeast)} events/s: ${yes(f.target.met)}.` +
      (f.target.met ? '' : ` foldRun runs at ${num(f.eventsPerSec)} events/s, ${num(f.usPerEvent, 2)} µs per event against the target's 1 µs; ${f.genericXState.eventsPerSec > 0 && Math.abs(f.eventsPerSec / f.genericXState.eventsPerSec - 1) < 0.15 ? `it costs what the generic XState path costs (within 15 %), so the fold is still a generic XState transition per event${evolveRate ? `; the projection reducer alone (\`evolve\`, no XState) runs at ${num(evolveRate)} events/s (table further down)` : ''}` : `the generic XState macrostep runs at ${num(f.genericXState.eventsPerSec)} events/s`}.`));
    d.push('');
  }
  const lr = p.longRuns;
  if (lr) {
    d.push(`**loadRun and verifyRun against the run's length.** One fresh file holds a run of a ${num(lr.longNodes)}-node linear playbook (${num(lr.long.eventsPerRun)} events; generated through the runtime in ${num(lr.generateMs / 1000, 1)} s) and ${lr.short.runs} runs of the 49-node one (${lr.short.eventsPerRun} events each), both with distinct small outputs (node \`nK\` returns \`{nK: 'done'}\`). ` +
      `Each was loaded once before timing, so the pinned playbook is compiled (cached by its hash) outside the timings. A round times \`loadRun\` and then \`verifyRun\` (the public call: chain check, fold, projection comparison) of the long run and of all short runs, the order alternating; ${lr.rounds} round${lr.rounds === 1 ? '' : 's'} (rounds stop once their time budget is spent), medians per event. ` +
      'Each round also times the two halves of `loadRun` apart: reading the log (`store.readRun`) and folding it (`foldStoredEvents`: hash check of the pinned text, cached compile, fold).');
    d.push('');
    d.push(mdTable(['run', 'events', 'loadRun µs/event', 'read µs/event', 'fold µs/event', 'hash chain µs/event', 'verifyRun µs/event', 'verifyRun / loadRun'], ['long', 'short'].map((side) => {
      const x = lr[side];
      return [side === 'long' ? `${num(lr.longNodes)} nodes` : `49 nodes (× ${x.runs})`, num(x.eventsPerRun), `**${num(x.loadUsPerEvent, 2)}**`, num(x.readUsPerEvent, 2), num(x.foldUsPerEvent, 2), x.chainUsPerEvent === undefined ? '' : num(x.chainUsPerEvent, 2), num(x.verifyUsPerEvent, 2), `**${num(x.verifyOverLoad, 2)}**`];
    })));
    d.push('');
    let verdict = `loadRun per event, long / short: **${num(lr.loadRatio, 2)}×**; target ≤ ${lr.target.load.ratioAtMost}: ${yes(lr.target.load.met)}. verifyRun / loadRun per event ≤ ${lr.target.verify.ratioAtMost} on both: ${yes(lr.target.verify.met)}.`;
    if (!lr.target.load.met) {
      const readGrows = lr.long.readUsPerEvent / lr.short.readUsPerEvent;
      const foldGrows = lr.long.foldUsPerEvent / lr.short.foldUsPerEvent;
      verdict += ` Per event, reading grows ${num(readGrows, 1)}× from the short runs to the long one and folding ${num(foldGrows, 1)}×: ${foldGrows > readGrows ? 'the fold is what grows with the run\'s length' : 'reading is what grows with the run\'s length'}.`;
    }
    if (!lr.target.verify.met && lr.short.chainUsPerEvent !== undefined) {
      verdict += ` verifyRun is loadRun plus two things: the hash chain recomputed over every event (the "hash chain" column, timed alone on the same events: canonical JSON of each event, a sorted copy then JSON.stringify, and SHA-256), which by itself costs ${num(lr.short.chainUsPerEvent / lr.short.loadUsPerEvent, 2)}× (short runs) and ${num(lr.long.chainUsPerEvent / lr.long.loadUsPerEvent, 2)}× (long run) the whole loadRun per event, and reading back and comparing the run's projection rows (one row per context key since schema 3). The chain is linear, so verify stays linear; what misses 2× is that re-encoding an event canonically costs more than reading and folding it.`;
    }
    d.push(verdict);
    d.push('');
  }
  d.push('**Whole-file replay (information; issue 8 asked ≥ 500,000 events/s).**');
  d.push('');
  d.push(`A database of ${num(p.totalEvents)} events (${num(p.runs)} completed runs of ${p.eventsPerRun} events, a 49-node linear playbook; ${num(p.databaseBytes / 2 ** 20, 1)} MiB) is replayed from the file: pages of ${num(p.readAllFold.page)} events through \`store.readAll\`, each run folded through its pinned playbook's machine (source hash checked, compiled once per text). ` +
    `Median of ${p.readAllFold.samplesMs.length} passes (${p.readAllFold.samplesMs.map((ms) => `${num(ms)} ms`).join(', ')}).`);
  d.push('');
  d.push(mdTable(['what', 'events/s', 'µs/event', 'note'], [
    ['**readAll + fold, whole file**', `**${num(p.readAllFold.eventsPerSec)}**`, num(1e6 / p.readAllFold.eventsPerSec, 2), `target ≥ 500,000: ${yes(p.target.met)}`],
    ['loadRun, run by run', num(p.loadRunPerRun.eventsPerSec), num(1e6 / p.loadRunPerRun.eventsPerSec, 2), 'one indexed query per run'],
    ...p.phases.map((x) => [x.phase, num(x.eventsPerSec), num(x.usPerEvent, 2), x.note ?? '']),
  ]));
  d.push('');
  const fold = p.phases.find((x) => x.phase.startsWith('foldRun'));
  const wrapper = p.phases.find((x) => x.phase.startsWith('reference: xstate transition()'));
  const read = p.phases.find((x) => x.phase.startsWith('store.readAll'));
  if (fold && read) {
    const raw = p.phases.find((x) => x.phase.startsWith('SQLite: read rows'));
    const evolve = p.phases.find((x) => x.phase.startsWith('evolve only'));
    const split = `The rows below the first two split the cost: reading and decoding the events (\`store.readAll\`) runs at ${num(read.eventsPerSec)} events/s, while folding them through the machine runs at ${num(fold.eventsPerSec)} events/s, so the fold bounds replay` +
      (evolve ? `; the projection reducer alone (\`evolve\`, no XState) runs at ${num(evolve.eventsPerSec)} events/s. ` : '. ');
    const why = '';
    const whatIf = wrapper
      ? `For reference, xstate's \`transition()\` wrapper, which creates a new actor (and computes the machine's initial snapshot) on every call, folds ${wrapper.note === 'same snapshot as foldRun' ? 'to the same snapshots as `foldRun`' : 'to DIFFERENT snapshots from `foldRun` (a bug)'} at ${num(wrapper.eventsPerSec)} events/s (${num(wrapper.usPerEvent, 2)} instead of ${num(fold.usPerEvent, 2)} µs per event). `
      : '';
    let limit = '';
    if (!p.target.met) {
      limit = 'Replay stays below the 500,000 events/s of issue 8. ';
      if (read.eventsPerSec < 500_000) {
        limit += `On this machine, reading and decoding the events through \`store.readAll\` alone (${num(read.eventsPerSec)} events/s) is already below the target, before any fold` +
          (raw ? `; better-sqlite3 stepping through the rows without parsing them runs at ${num(raw.eventsPerSec)} events/s.` : '.');
      }
    }
    d.push(split + why + whatIf + limit);
    d.push('');
  }
  d.push(`**Resume.** ${p.resume.pausedRunsTimed} paused runs (a gate after one node) are resumed inside the ${num(p.resume.databaseEvents.big)}-event file and inside a file holding only ${num(p.resume.databaseEvents.tiny)} events. ` +
    'Load + fold is `loadRun` (read the run\'s log by its index and fold it); resume is the whole public `resumePlaybook` call (load, fold, verify the token, commit `RunResumed`, run the last node, complete). Medians:');
  d.push('');
  d.push(mdTable(['file', 'events in the file', 'load + fold (ms)', 'resumePlaybook (ms)'], [
    ['big', num(p.resume.databaseEvents.big), num(p.resume.big.loadFoldMs, 3), num(p.resume.big.resumeMs, 3)],
    ['tiny', num(p.resume.databaseEvents.tiny), num(p.resume.tiny.loadFoldMs, 3), num(p.resume.tiny.resumeMs, 3)],
    ['big / tiny', '', `×${num(p.resume.ratioLoadFold, 2)}`, `**×${num(p.resume.ratioResume, 2)}**`],
  ]));
  d.push('');
  d.push(`Independent of the database size means big / tiny ≤ ${p.resume.target.ratioAtMost}: ${yes(p.resume.target.met)}. Every query on this path is by run id (the \`UNIQUE (run_id, seq)\` index) or by primary key, so its cost follows the run's own log, not the file.`);
  d.push('');
  d.push(...profileLines(p.profile, 'the whole-file replay'));
  return d;
}

function growthSection(g) {
  const d = ['## 4. Growth with the number of steps'];
  if (failed(g)) return [...d, ...notMeasured(g)];
  const sizes = g.sizes.map((x) => num(x.nodes));
  d.push('');
  d.push(`Linear playbooks of ${sizes.join(', ')} nodes whose nodes each return ${num(g.outputBytes)} bytes of output, in two shapes: **distinct keys** (node \`nK\` returns \`{nK: …}\`, so the run context grows to N × 2 KB, like a playbook whose steps each report their own result; the targets' workload) and **one key** (every node returns \`{result: …}\`, so the context stays at 2 KB; information). ` +
    `Each of ${g.rounds} rounds measures every size on a fresh file (${g.sizes.map((x) => `${num(x.runs)} run${x.runs === 1 ? '' : 's'} of ${num(x.nodes)} nodes`).join(', ')}), in alternating order (small to large, then large to small), after one untimed run with empty outputs that compiles the playbook and stores its text; the table gives medians over the rounds. ` +
    'µs/step is a run\'s wall time divided by its nodes. Written bytes are what the process handed to the OS while the runs ran (`/proc/self/io`: WAL frames and checkpoints); stored bytes are how much the database file grew (after a checkpoint); event bytes are the events\' own columns.');
  d.push('');
  d.push(mdTable(['output shape', 'nodes', 'runs × rounds', 'µs/step', 'per round (µs/step)', 'written bytes/run', 'written bytes/step', 'stored bytes/step', 'event bytes/run', 'runs-row context bytes'],
    g.results.flatMap((x) => x.rows.map((row) => [x.variant, num(row.nodes), `${num(row.runs)} × ${g.rounds}`, num(row.usPerStep, 1), (row.usPerStepSamples ?? []).map((v) => num(v, 1)).join(', '), num(row.writtenBytesPerRun), num(row.writtenBytesPerStep), num(row.storedBytesPerStep), num(row.eventBytesPerRun), num(row.runRowBindingsBytes)]))));
  d.push('');
  d.push(`Growth exponent k of a per-run figure x(N) ∝ N^k, the least-squares slope of log x against log N over N = ${sizes.join(', ')} (1 = linear, 2 = quadratic), and the per-step time of the largest size over the smallest:`);
  d.push('');
  d.push(mdTable(['output shape', 'written bytes', 'stored bytes', 'time', `µs/step, ${sizes.at(-1)} / ${sizes[0]} nodes`], g.results.map((x) => [x.variant, `**${num(x.exponents.writtenBytesPerRun, 2)}**`, num(x.exponents.storedBytesPerRun, 2), num(x.exponents.msPerRun, 2), `**${num(x.perStepRatio.ratio, 2)}**`])));
  d.push('');
  const t = g.target;
  d.push(`Targets, distinct keys: per-step time ${sizes.at(-1)} / ${sizes[0]} nodes ≤ ${t.perStep.ratioAtMost}: ${num(t.perStep.ratio, 2)}, ${yes(t.perStep.met)}; bytes written per run ≤ N^${t.writtenBytes.exponentAtMost}: N^${num(t.writtenBytes.exponent, 2)}, ${yes(t.writtenBytes.met)}. ` +
    `What the database holds stays linear (worst stored exponent ${num(t.stored.worstExponent, 2)}; issue 8 asked ≤ ${t.stored.exponentAtMost}, information now).`);
  d.push('');
  const distinct = g.results.find((x) => x.variant === 'distinct keys');
  const oneKey = g.results.find((x) => x.variant === 'one key');
  if (distinct && (!t.perStep.met || !t.writtenBytes.met)) {
    const small = distinct.rows[0];
    const large = distinct.rows.at(-1);
    d.push(`Where the misses come from, measured: with distinct keys the bytes written per step go from ${num(small.writtenBytesPerStep)} at ${num(small.nodes)} nodes to ${num(large.writtenBytesPerStep)} at ${num(large.nodes)}, while the event bytes per step stay at about ${num(large.eventBytesPerRun / large.nodes)} and the runs row's context reaches ${num(large.runRowBindingsBytes)} bytes: ` +
      'each commit writes more the longer the run, as it would if every commit rewrote the whole context (the `runs` projection row holds it) instead of only the step\'s output.' +
      (oneKey ? ` With one key (the context stays at 2 KB) the written bytes grow as N^${num(oneKey.exponents.writtenBytesPerRun, 2)} and the per-step time ${sizes.at(-1)} / ${sizes[0]} is ${num(oneKey.perStepRatio.ratio, 2)}, so the number of steps alone ${oneKey.perStepRatio.ratio <= t.perStep.ratioAtMost ? 'does not explain the per-step growth' : 'also makes a step dearer'}.` : ''));
    d.push('');
  }
  return d;
}

function parallelSection(q) {
  const d = ['## 6. Parallel groups'];
  if (failed(q)) return [...d, ...notMeasured(q)];
  d.push('');
  d.push(`A playbook whose only node is a \`parallel\` group of ${q.branches} branches, each a chain of ${q.chain} agentic nodes, against one such chain alone (a linear playbook), with a dispatcher that awaits ${q.dispatchMs} ms per node; ${q.rounds} runs of each, interleaved, same process and store.`);
  d.push('');
  d.push(mdTable(['', 'median wall time'], [
    [`one branch (${q.chain} nodes)`, `${num(q.branch.medianMs, 2)} ms`],
    [`group of ${q.branches} branches (${q.branches * q.chain} nodes)`, `${num(q.group.medianMs, 2)} ms`],
    ['branches one after the other (computed)', `${num(q.serialisedMs, 1)} ms`],
  ]));
  d.push('');
  d.push(`Ratio group / branch: **${num(q.ratio, 2)}** (per round min ${num(q.roundRatios.min, 2)}, median ${num(q.roundRatios.median, 2)}, max ${num(q.roundRatios.max, 2)}); target <= ${q.target.ratioAtMost}: ${yes(q.target.met)}. ` +
    'The branches\' dispatches are all in flight at once and results that arrive in one turn of the event loop share one commit; what the group adds over one branch is the CPU work of folding and committing 8x the events through a machine with a parallel state (one Node thread does all of it).');
  d.push('');
  return d;
}

function concurrencySection(c, loadAfter, cores) {
  const d = ['## 5. Concurrency'];
  if (failed(c)) return [...d, ...notMeasured(c)];
  d.push('');
  d.push(`${num(c.inFlight)} runs of the ${c.nodes}-node linear playbook started together in one process on one store (a fresh file per round), with a dispatcher that awaits ${c.dispatchMs} ms per node; steps/s is all runs' node steps over the wall time until the last run ended. ` +
    'The store groups the appends of sessions in flight together into one transaction per turn of the event loop (`store.stats` counts appends and commits). ' +
    'The baseline is **raw SQLite committing the same rows in the same batches**: bare better-sqlite3 on a fresh file of the same schema writes exactly what the store was asked to write in the runtime round — each append\'s events (data, timestamps, hashes of the same bytes), the pinned playbook row, the runs projection upsert and its status update — grouped into the transactions the store committed, in their order, with every parameter prepared before timing (no waiting, no state machine, no JSON, no hashing). ' +
    `Its steps/s is the same node steps over its time. ${c.rounds} rounds alternating which side goes first (the raw side replays the newest runtime recording); medians; both sides are checked to have stored the same events in the same number of commits.`);
  d.push('');
  d.push(mdTable(['', 'steps/s', 'wall time (median)', 'per round (ms)', 'CPU time', 'commits per round', 'file bytes/step'], [
    [`runtime, ${num(c.inFlight)} runs in flight`, `**${num(c.runtime.stepsPerSec)}**`, `${num(c.runtime.ms)} ms`, c.runtime.samplesMs.map((v) => num(v)).join(', '), `${num(c.runtime.cpuMs)} ms`, `${num(c.runtime.commitsPerRound)} (${num(c.runtime.appendsPerCommit, 1)} of ${num(c.runtime.appendsPerRound)} appends each)`, num(c.runtime.bytesPerStep)],
    ['raw SQLite, same rows and batches', num(c.raw.stepsPerSec), `${num(c.raw.ms)} ms`, c.raw.samplesMs.map((v) => num(v)).join(', '), '', 'the same', num(c.raw.bytesPerStep)],
  ]));
  d.push('');
  let verdict = `Runtime / raw: **${num(c.ratio, 2)}** (per round ${c.roundRatios.map((v) => num(v, 2)).join(', ')}); target ≥ ${c.target.ratioAtLeast}, with all ${num(c.inFlight)} runs waiting in a dispatch at once at some point (measured: ${num(c.runtime.peakInFlight)}): ${yes(c.target.met)}. ` +
    `For scale: serialised, the runs would wait ${num(c.bounds.serialisedMs)} ms; fully overlapped, ${num(c.bounds.fullyOverlappedWaitMs)} ms plus the CPU work.`;
  if (!c.target.met) {
    const busy = c.runtime.cpuMs / c.runtime.ms;
    verdict += ` The process used ${num(c.runtime.cpuMs)} ms of CPU in ${num(c.runtime.ms)} ms of wall time (${num(busy * 100)} %)${busy >= 0.8 ? ': the runtime is CPU-bound, so what bounds its steps/s is its own CPU work per step on one Node thread (section 1 splits that work), not the 5 ms waits or SQLite, whose share of the same rows is the raw time' : `, so for part of the wall time it was not running: it waited for its 5 ms timers or, with a load average of ${num(loadAfter, 2)} on ${cores} cores, for a core`}.`;
  }
  d.push(verdict);
  d.push('');
  return d;
}

function workersSection(w, loadAfter, cores) {
  const d = ['## 7. Workers'];
  if (failed(w)) return [...d, ...notMeasured(w)];
  const one = w.rows.find((x) => x.processes === 1);
  const most = w.rows.at(-1);
  d.push('');
  d.push(`Runs of a ${w.nodes}-node linear playbook whose dispatcher awaits ${w.dispatchMs} ms per node. **Workers:** the runs are recorded with \`startRun\` on a fresh file (not timed: ${num(one.workers.startRunPerSec)} runs/s), then ${w.rows.map((x) => x.processes).join(', ')} worker processes each run \`createWorker({concurrency: ${w.perWorker}})\` with \`start()\` on that one file, so each process adds ${w.perWorker} runs in flight; timed from telling the processes to go until they have reported the end of every run. ` +
    `**Baseline (inline):** one process running \`executePlaybook\` with the same number of runs in flight (that many lanes, each running one run after another) on a fresh file. A sample is ${num(w.runsPerSlot)} runs per run in flight (${w.rows.map((x) => num(x.runs)).join(', ')} runs). ` +
    `All processes are long-lived children of the bench, started once and warmed up before any timing (start-up is not in the figures: ${num(w.startup.aloneMs)} ms from spawn until one process has loaded the library alone, ${num(w.startup.togetherMs)} ms when all five start at once on ${cores} cores). ` +
    `${w.rounds} rounds; baseline and subject run back to back, which goes first alternating; medians, the ratio is of the medians. Every sample is checked: every run completed and each was claimed exactly once. Events stored per run: ${num(one.workers.eventsPerRun)} through workers, ${num(one.inline.eventsPerRun)} inline.`);
  d.push('');
  const configRow = (label, x, side, ratio, perRound) => [label, num(x.inFlight), side === x.workers ? `**${num(side.runsPerSec, 1)}**` : num(side.runsPerSec, 1), side === x.workers ? num(x.inline.runsPerSec, 1) : '', side === x.workers ? `**${num(ratio, 2)}**` : num(ratio, 2), perRound,
    side.claimedPerProcess.at(-1).map((v) => num(v)).join(' / '), `${num(side.cpuMsPerRun, 2)} / ${num(x.inline.cpuMsPerRun, 2)}`, `${num(side.commitsPerRun, 2)} / ${num(x.inline.commitsPerRun, 2)}`,
    `${num(side.writeTx.msPerRun, 2)} / ${num(x.inline.writeTx.msPerRun, 2)}`, `${num(side.writeTx.maxMs, 1)} ms`];
  d.push(mdTable(['worker processes × concurrency', 'runs in flight', 'workers runs/s', 'inline runs/s', 'workers / inline', 'per round', 'runs claimed per process', 'CPU ms/run (workers / inline)', 'commits/run (workers / inline)', 'ms/run in write transactions (workers / inline)', 'longest write transaction'],
    w.rows.flatMap((x) => [
      configRow(`${x.processes} × ${w.perWorker}`, x, x.workers, x.ratio, x.roundRatios.map((v) => num(v, 2)).join(', ')),
      ...(x.ownFiles === undefined ? [] : [configRow(`${x.processes} × ${w.perWorker}, each on a file of its own (control)`, x, x.ownFiles, x.ownFiles.ratio, '')]),
    ])));
  d.push('');
  const scale = w.rows.filter((x) => x.processes > 1).map((x) => `${x.processes} vs 1 process **${num(w.scaling[`${x.processes}vs1`], 2)}** (inline, ${num(x.inFlight)} vs ${num(one.inFlight)} in flight: ${num(w.inlineScaling[`${x.inFlight}vs${one.inFlight}`], 2)})`).join(', ');
  d.push(`No target was set for throughput; measured: workers / inline with the same runs in flight ${w.rows.map((x) => `${num(x.ratio, 2)} (${x.processes} process${x.processes > 1 ? 'es' : ''})`).join(', ')}; scaling ${scale}. ` +
    `Were a run only its ${num(w.bounds.waitPerRunMs)} ms of waiting, ${w.rows.map((x) => num(x.inFlight)).join(', ')} runs in flight would give at most ${w.rows.map((x) => num(w.bounds.runsPerSecAtMost[x.inFlight])).join(', ')} runs/s. ` +
    `A sequential \`executePlaybook\` loop (one run after another) does ${num(w.sequential.runsPerSec, 1)} runs/s, ${num(w.sequential.msPerRun, 1)} ms per run.`);
  d.push('');
  {
    const perProcessTx = (most.workers.writeTx.msPerRun * most.runs) / most.processes;
    const cpuCores = (most.workers.cpuMsPerRun * most.workers.runsPerSec) / 1000;
    const own = most.ownFiles;
    const polls = most.workers.storeCallsPerRun.nextWakeAt;
    let text = `With ${most.processes} processes on one file (${num(most.ratio, 2)} of inline), each run spent ${num(most.workers.writeTx.msPerRun, 2)} ms inside SQLite write transactions (inline: ${num(most.inline.writeTx.msPerRun, 2)} ms), about ${num((perProcessTx / most.workers.ms) * 100)} % of each process's wall time, the longest ${num(most.workers.writeTx.maxMs, 1)} ms. ` +
      'That time includes waiting for the file\'s write lock while another process holds it, which better-sqlite3 does synchronously (SQLite\'s busy handler sleeps and retries): while a process waits, its event loop, and every run it drives, stands still. ';
    if (own !== undefined) {
      text += `The control, the same ${most.processes} processes each draining its share from a file of its own (no lock shared), did ${num(own.runsPerSec, 1)} runs/s (${num(own.ratio, 2)} of inline) with ${num(own.writeTx.msPerRun, 2)} ms per run in write transactions` +
        (own.ratio - most.ratio >= 0.05 ? `: sharing one file, and with it one write lock, is what the workers pay the difference for (${num(own.ratio, 2)} against ${num(most.ratio, 2)}). ` : `: at this rate, sharing the write lock costs little throughput (${num(own.ratio, 2)} against ${num(most.ratio, 2)}). `);
    }
    text += `Each process commits only its own appends, so fewer share a commit (${num(most.workers.commitsPerRun, 2)} commits per run against ${num(most.inline.commitsPerRun, 2)} inline), and the worker processes used ${num(most.workers.cpuMsPerRun, 2)} ms of CPU per run against ${num(most.inline.cpuMsPerRun, 2)}` +
      (polls === undefined ? '' : ` (their looks for work while full, below, took ${num(polls.calls, 1)} \`nextWakeAt\` queries and ${num(polls.ms, 2)} ms per run)`) +
      `, keeping ${num(cpuCores, 2)} of the machine's ${cores} cores busy at that rate (load average ${num(loadAfter, 2)} after the bench). `;
    const claims = most.workers.claimedPerProcess.flat();
    const fair = most.runs / most.processes;
    text += Math.min(...claims) >= 0.75 * fair
      ? `No process was starved of claims: over all rounds each claimed between ${num(Math.min(...claims))} and ${num(Math.max(...claims))} of the ${num(most.runs)} runs (a fair share is ${num(fair)}).`
      : `Claims were uneven: over all rounds a process claimed as few as ${num(Math.min(...claims))} and as many as ${num(Math.max(...claims))} of the ${num(most.runs)} runs (a fair share is ${num(fair)}).`;
    d.push(text);
    d.push('');
  }
  const i = w.idle;
  const s = w.saturated;
  d.push(`**Waiting.** One warm worker process (default \`pollMs\` ${num(w.pollMs)} ms) on an empty file for ${num(i.windowMs / 1000, 1)} s used ${num(i.cpuMs, 1)} ms of CPU, **${num(i.cpuPercentOfCore, 3)} % of one core**${i.procCpuMs === null ? '' : ` (/proc: ${num(i.procCpuMs)} ms, in 10 ms ticks)`}, and looked for work ${num(i.calls.claimRuns?.calls ?? 0)} times (one \`claimRuns\` and one \`nextWakeAt\` per look): ${yes(w.target.idle.met)}, it does not busy-poll. ` +
    `The same process on a file of ${num(s.backlog)} runnable runs, its ${w.perWorker} slots held by dispatches that outlast the ${num(s.windowMs / 1000, 1)} s window, used **${num(s.cpuPercentOfCore, 2)} % of one core** and slept ${num(s.calls.nextWakeAt?.calls ?? 0)} times between looks (every ${num(s.msPerLook, 2)} ms; each \`nextWakeAt\` ${num(s.nextWakeAtMsPerCall, 3)} ms): ${yes(w.target.saturated.met)}` +
    (w.target.saturated.met ? '.' : ': a full worker with runs waiting asks the store for the next due time, gets a waiting run\'s due time, which has passed, and sleeps a millisecond before asking again, with a query whose cost grows with the number of runs waiting. ' +
      `The same happens in the throughput samples above whenever a process is full and runs wait: there the workers called \`nextWakeAt\` ${w.rows.map((x) => num(x.workers.storeCallsPerRun.nextWakeAt?.calls, 1)).join(', ')} times per run (${w.rows.map((x) => `${x.processes} process${x.processes > 1 ? 'es' : ''}`).join(', ')}).`));
  d.push('');
  return d;
}

function postgresSection(p, cores) {
  const d = ['## 8. PostgreSQL'];
  if (failed(p)) return [...d, ...notMeasured(p)];
  const sv = p.server;
  const one = p.rows.find((x) => x.processes === 1);
  const cpu = (x) => `${num(x.perStep.clientCpuMs, 2)} / ${x.perStep.serverCpuMs === null ? 'n/a' : num(x.perStep.serverCpuMs, 2)}`;
  d.push('');
  d.push(`${sv.external ? 'The server of `CANTBOOK_BENCH_POSTGRES_URL`' : 'A throwaway cluster the section starts for itself (`scripts/pgTestCluster.sh start DIR --durable`) and removes at the end'}: ${sv.version}, \`fsync = ${sv.fsync}\`, \`synchronous_commit = ${sv.synchronous_commit}\`, \`full_page_writes = ${sv.full_page_writes}\`, \`wal_sync_method = ${sv.wal_sync_method}\`, \`commit_delay = ${sv.commit_delay}\`, \`shared_buffers = ${sv.shared_buffers}\`${sv.fsync === 'on' && sv.synchronous_commit === 'on' ? ', so every commit returns only once its WAL is flushed to disk' : ': NOT fully durable, so these figures are not those of a durable server'}. ` +
    `${sv.external ? `Both engines and all their processes share this machine's ${cores} cores (the server may be elsewhere; its CPU time is not measured)` : `Both engines, all processes and the server share this machine's ${cores} cores`}. The workload is a ${p.nodes}-node linear playbook whose dispatcher returns at once with a small output (\`{nK: 'done'}\`): no work and no await, so what is measured is the engine and its store per step. ` +
    'Every process is a long-lived child of the bench (`bench/lib/postgresProcess.mjs`), started once and warmed up before any timing. Around each timed phase the bench reads the server\'s WAL position and next transaction id (write transactions, cluster-wide, while only the side measured works) and, for a cluster of its own, the CPU time of all the server\'s processes; each process counts its own CPU time and every query it sends through node-postgres (one round trip each). ' +
    '`pg_stat_database.xact_commit` is not used: backends flush it up to 10 s late, which would misattribute a phase of a few seconds.');
  d.push('');
  d.push(`**Workers.** ${p.rows.map((x) => x.processes).join(', ')} worker processes, each with its own \`openPostgresStore\` (a pool of 10) on one schema and \`createWorker({concurrency: ${p.perWorker}})\`, drain runs recorded beforehand with \`startRun\` in a fresh schema (untimed, ${num(one.startRunPerSec)} runs/s); ${num(p.runsPerSlot)} runs per run in flight (${p.rows.map((x) => num(x.runs)).join(', ')} runs), ${p.rounds} rounds, the order of K reversed every other round; medians. ` +
    `Every sample is checked: every run completed, its log holds each node started exactly once, and the processes claimed ${p.rows.map((x) => num(x.runs)).join(', ')} runs in all (each run once). Events per run: ${num(one.eventsPerRun)}.`);
  d.push('');
  d.push(mdTable(['worker processes × concurrency', 'runs in flight', 'steps/s', 'runs/s', 'vs 1 worker', 'per round (steps/s)', 'queries/step', 'write transactions/step', 'WAL bytes/step', 'CPU ms/step (client / server)', 'runs claimed per process (last round)'],
    p.rows.map((x) => [`${x.processes} × ${p.perWorker}`, num(x.inFlight), `**${num(x.stepsPerSec)}**`, num(x.runsPerSec, 1), `**${num(x.vsOne, 2)}**`, x.samplesStepsPerSec.map((v) => num(v)).join(', '),
      num(x.perStep.queries, 1), num(x.perStep.writeTransactions, 2), num(x.perStep.walBytes), cpu(x), x.claimedPerProcess.at(-1).map((v) => num(v)).join(' / ')])));
  d.push('');
  const most = p.rows.at(-1);
  const cores_ = (x) => ({ client: (x.perStep.clientCpuMs * x.stepsPerSec) / 1000, server: x.perStep.serverCpuMs === null ? null : (x.perStep.serverCpuMs * x.stepsPerSec) / 1000 });
  const busy = cores_(most);
  const raw16 = p.peerRows.at(-1).raw;
  const raw1 = p.peerRows.find((x) => x.inFlight === 1)?.raw;
  const mostCommits = most.stepsPerSec * most.perStep.writeTransactions;
  let scaleText = `No threshold was set; measured: ${p.rows.filter((x) => x.processes > 1).map((x) => `${x.processes} vs 1 worker **${num(x.vsOne, 2)}**`).join(', ')}. ` +
    `A worker's step costs ${num(most.perStep.writeTransactions, 2)} write transactions (its appends, one per step and one to start a run, and its claims) and ${num(most.perStep.queries, 1)} queries. ` +
    `With ${most.processes} workers the worker processes kept ${num(busy.client, 2)} cores busy${busy.server === null ? '' : ` and the server ${num(busy.server, 2)}`} of the machine's ${cores}, and asked ${num(mostCommits)} commits a second of a server that commits ${num(raw16.commitsPerSec)} a second from ${num(p.peerRows.at(-1).inFlight)} connections at once${raw1 ? ` and ${num(raw1.commitsPerSec)} from one` : ''} (below).`;
  if (most.vsOne < 1.5 && busy.server !== null && busy.client + busy.server >= 0.8 * cores) {
    scaleText += ` So the machine's CPU bounds them: the workers and the server share its ${cores} cores, and with ${num(busy.client + busy.server, 2)} of them busy another worker process only divides the same CPU (and adds its own claims and renewals); this figure says nothing of more machines, which is what workers are for.`;
  } else if (most.vsOne < 1.5 && busy.server !== null && busy.client + busy.server < 0.8 * cores && mostCommits < 0.5 * raw16.commitsPerSec) {
    scaleText += ' So neither the CPU nor the server\'s commit rate bounds them: every append takes the store\'s position counter and holds it from its last write to its commit (as `openPostgresStore` documents, so that `readAll` never skips an event), so appends to different runs, from any number of processes, commit one after another, each waiting for its own WAL flush' +
      (raw1 && mostCommits <= 1.1 * raw1.commitsPerSec ? ` — which is why their commit rate stays at or below what one connection alone commits (${num(raw1.commitsPerSec)} a second).` : '.');
  }
  d.push(scaleText);
  d.push('');
  d.push(`**Against DBOS Transact.** The same ${p.nodes} steps as a DBOS workflow (\`@dbos-inc/dbos-sdk\` ${p.peer.dbos}, \`bench/peers/dbos/linearWorkflow.mjs\`): \`DBOS.registerWorkflow\` over ${p.nodes} \`DBOS.registerStep\` functions that each return \`{nK: 'done'}\`, the workflow returning the ${p.nodes} outputs merged, its system tables in a schema of the same database on the same server. ` +
    'DBOS runs a workflow in the process that calls it, so its counterpart is cantbook\'s `executePlaybook` in one process, with the same number of runs in flight (lanes, each running one run or workflow after another); the workers figure at the same number in flight is given beside it. ' +
    `Both keep one pool of 10 connections (each engine's default) open for the process's life, and both tables grow across the samples. ${p.rounds} rounds; the two alternate which goes first; medians, the ratio is of the medians. ` +
    `Checked: every cantbook run completed with each node started once in its log; every DBOS workflow returned ${p.nodes} outputs and recorded ${p.nodes} steps, and the step functions ran exactly ${p.nodes} times per workflow. ` +
    'Raw durable commits is the server alone: that many connections at once, each committing single-row INSERTs one after another (the rate a commit-per-step engine could reach at most).');
  d.push('');
  d.push(mdTable(['in flight', 'engine', 'steps/s', 'workflows/s', 'cantbook / DBOS', 'per round', 'queries/step', 'write transactions/step', 'WAL bytes/step', 'CPU ms/step (client / server)', 'commits/s asked of the server'],
    p.peerRows.flatMap((x) => [
      [num(x.inFlight), 'cantbook `executePlaybook`', `**${num(x.cantbook.stepsPerSec)}**`, num(x.cantbook.runsPerSec, 1), `**${num(x.ratio, 2)}**`, x.roundRatios.map((v) => num(v, 2)).join(', '),
        num(x.cantbook.perStep.queries, 1), num(x.cantbook.perStep.writeTransactions, 2), num(x.cantbook.perStep.walBytes), cpu(x.cantbook), num(x.commitsPerSec.cantbook)],
      [num(x.inFlight), 'DBOS Transact workflows', num(x.dbos.stepsPerSec), num(x.dbos.runsPerSec, 1), '', '',
        num(x.dbos.perStep.queries, 1), num(x.dbos.perStep.writeTransactions, 2), num(x.dbos.perStep.walBytes), cpu(x.dbos), num(x.commitsPerSec.dbos)],
      ...(x.workers ? [[num(x.inFlight), `cantbook, ${x.workers.processes} workers × ${p.perWorker}`, num(x.workers.stepsPerSec), '', num(x.workers.ratio, 2), '', '', '', '', '', '']] : []),
      [num(x.inFlight), `raw durable commits, ${num(x.inFlight)} connection${x.inFlight > 1 ? 's' : ''}`, '', '', '', '', '', '', '', '', `${num(x.raw.commitsPerSec)} (${num(x.raw.msPerCommit, 2)} ms per commit on each connection)`],
    ])));
  d.push('');
  const h = p.peerRows.find((x) => x.inFlight === p.target.dbos.inFlight);
  const lone = p.peerRows.find((x) => x.inFlight === 1);
  const c = h.cantbook.perStep;
  const b = h.dbos.perStep;
  let text = `Target: cantbook ≥ DBOS Transact's throughput at ${num(h.inFlight)} in flight: **${num(h.ratio, 2)}×**, ${yes(p.target.dbos.met)}` +
    (lone && lone !== h ? ` (one in flight: ${num(lone.ratio, 2)}×)` : '') + '. ';
  if (!p.target.dbos.met) {
    text += `cantbook is slower: ${num(h.cantbook.stepsPerSec)} steps/s where DBOS does ${num(h.dbos.stepsPerSec)}, ${num((1 - h.ratio) * 100)} % fewer` +
      (h.workers ? `; through ${h.workers.processes} workers, ${num(h.workers.stepsPerSec)} (${num(h.workers.ratio, 2)}×)` : '') + '. ';
  }
  text += 'What each commits per step: cantbook one transaction per append — a node\'s result and the next node\'s start together (`NodeSucceeded` + `NodeStarted`, so the start of every attempt is durable before it is dispatched), the run\'s projection rows and the store\'s position counter — ' +
    `${num(c.writeTransactions * p.nodes, 1)} per run; DBOS one \`operation_outputs\` row per step, committed after the step returned, plus the workflow's status row at its start and its end, ${num(b.writeTransactions * p.nodes, 1)} per run. ` +
    `Per step at ${num(h.inFlight)} in flight, cantbook sent ${num(c.queries, 1)} queries to DBOS's ${num(b.queries, 1)}, wrote ${num(c.walBytes)} bytes of WAL to its ${num(b.walBytes)} (${num(c.walBytes / b.walBytes, 1)}×), ` +
    `and spent ${num(c.clientCpuMs, 2)} ms of its own CPU to DBOS's ${num(b.clientCpuMs, 2)}` + (c.serverCpuMs === null ? '' : ` and ${num(c.serverCpuMs, 2)} ms of the server's to DBOS's ${num(b.serverCpuMs, 2)}`) + '.';
  d.push(text);
  d.push('');
  // Where a step's time goes when nothing overlaps (one in flight): the engine's CPU, the server's, and the WAL flush of each commit.
  if (lone && lone.cantbook.perStep.serverCpuMs !== null) {
    const parts = (x) => {
      const wall = 1000 / x.stepsPerSec;
      const flush = x.perStep.writeTransactions * lone.raw.msPerCommit;
      return `${num(wall, 2)} ms: ${num(x.perStep.clientCpuMs, 2)} ms of its own CPU, ${num(x.perStep.serverCpuMs, 2)} ms of the server's and ${num(wall - x.perStep.clientCpuMs - x.perStep.serverCpuMs, 2)} ms waiting, of which its ${num(x.perStep.writeTransactions, 2)} commits at ${num(lone.raw.msPerCommit, 2)} ms per raw durable commit account for up to ${num(flush, 2)} ms`;
    };
    d.push(`**Where the time goes.** With one in flight nothing overlaps, so a step's wall time is the engine's CPU, the server's, and the waits in between, chiefly for each commit's WAL flush (a raw durable commit, above, includes a little CPU of its own). A cantbook step took ${parts(lone.cantbook)}; a DBOS step took ${parts(lone.dbos)}. ` +
      `At ${num(h.inFlight)} in flight the server commits ${num(h.raw.commitsPerSec)} times a second from ${num(h.inFlight)} connections (${num(lone.raw.commitsPerSec)} from one: concurrent commits share a WAL flush), while cantbook asked ${num(h.commitsPerSec.cantbook)} commits a second of it and DBOS ${num(h.commitsPerSec.dbos)}; ` +
      `the client and the server together kept ${num(((c.clientCpuMs + (c.serverCpuMs ?? 0)) * h.cantbook.stepsPerSec) / 1000, 2)} of the ${cores} cores busy for cantbook and ${num(((b.clientCpuMs + (b.serverCpuMs ?? 0)) * h.dbos.stepsPerSec) / 1000, 2)} for DBOS. ` +
      `From one to ${num(h.inFlight)} in flight cantbook gained ${num(h.cantbook.stepsPerSec / lone.cantbook.stepsPerSec, 2)}× and DBOS ${num(h.dbos.stepsPerSec / lone.dbos.stepsPerSec, 2)}×.`);
    d.push('');
  }
  const idle = h.dbos.idleQueriesPerSec;
  if (idle !== undefined && idle > 0) {
    d.push(`While idle (during the other side's phases) the DBOS process sent ${num(idle, 1)} queries a second (its background polling); ` +
      `cantbook's phases counted ${num(c.writeTransactions * p.nodes, 1)} write transactions per run of ${p.nodes} steps, which is cantbook's own appends (one per step and one to start the run), so that polling wrote nothing.`);
    d.push('');
  }
  return d;
}

function childRunsSection(c, loadAfter, cores) {
  const d = ['## 9. Child runs'];
  if (failed(c)) return [...d, ...notMeasured(c)];
  const s = c.sqlite;
  const p = failed(c.postgres) ? null : c.postgres;
  const waves = c.idealMs / (c.chain * c.dispatchMs);
  d.push('');
  d.push(`A root playbook of two nodes: \`plan\`, whose dispatch returns ${num(c.items)} items at once, then a \`map\` over them (\`max_concurrency: ${c.maxConcurrency}\`, \`item_input: item\`) whose child playbook is ${c.chain} sequential agentic nodes, each answered by the dispatcher after ${c.dispatchMs} ms (a \`setTimeout\`) with a small output (\`{sK: 'done'}\`). ` +
    `The whole tree is one \`executePlaybook\` call (the child's text from an in-memory \`resolvePlaybook\`), timed until it returns, on a fresh SQLite file${p ? ` and on a fresh schema of a PostgreSQL server (section 8's: ${p.server.external ? 'the server of `CANTBOOK_BENCH_POSTGRES_URL`' : 'a throwaway durable cluster'}, ${p.server.version}, fsync ${p.server.fsync}, synchronous_commit ${p.server.synchronousCommit})` : ''}. ` +
    `**Ideal:** were the runtime free, ${num(waves)} waves of ${c.maxConcurrency} children, each ${c.chain} × ${c.dispatchMs} ms: ${num(c.idealMs)} ms. ` +
    `**Baseline, same rounds:** the same ${num(c.items * c.chain)} dispatches as ${num(c.items)} root runs of the child playbook, ${c.maxConcurrency} at a time (${c.maxConcurrency} lanes of \`executePlaybook\`, each one run after another): the same ideal, without a parent. ` +
    'Both again with a dispatcher that answers at once: nothing waits, so the wall time is the runtime\'s and the store\'s own work. ' +
    `${s.rounds} rounds on SQLite${p ? `, ${p.rounds} on PostgreSQL` : ''}, the four kinds alternating their order, after one untimed sample of each; medians. CPU time is this process's, all its threads (\`process.cpuUsage\`: the garbage collector's helper threads too, so it can exceed the wall time), appends and commits the SQLite store's own counts (\`store.stats\`). ` +
    `Checked: every tree completed with ${num(c.items)} completed children listed in item order in the map's output, every root run completed, and never more than ${c.maxConcurrency} dispatches waited at once.`);
  d.push('');
  const kindRows = (store, x) => [
    ['tree5', `map of ${num(c.items)} children`, `${c.dispatchMs} ms`],
    ['roots5', `${num(c.items)} root runs, ${c.maxConcurrency} at a time`, `${c.dispatchMs} ms`],
    ['tree0', `map of ${num(c.items)} children`, 'at once'],
    ['roots0', `${num(c.items)} root runs, ${c.maxConcurrency} at a time`, 'at once'],
  ].map(([key, what, dispatcher]) => {
    const k = x[key];
    return [store, what, dispatcher, `${num(k.medianMs, 1)} ms`, k.samplesMs.map((v) => num(v)).join(', '), key === 'tree5' ? `**${num(k.overIdeal, 2)}**` : num(k.overIdeal, 2), `${num(k.cpuMs)} ms`,
      k.appends === null ? '' : `${num(k.appends)} / ${num(k.commits)}`, key.endsWith('5') ? num(k.peakWaiting) : ''];
  });
  d.push(mdTable(['store', 'workload', 'dispatcher', 'wall time (median)', 'per round (ms)', `/ ideal (${num(c.idealMs)} ms)`, 'CPU time', 'appends / commits', 'most dispatches waiting at once'],
    [...kindRows('SQLite', s), ...(p ? kindRows('PostgreSQL', p) : [])]));
  d.push('');
  const excess = s.tree5.medianMs - c.idealMs;
  let text = `**What the ratio means.** On SQLite the tree took **${num(s.tree5.overIdeal, 2)}×** the ideal (per round ${s.roundRatios.map((v) => num(v, 2)).join(', ')}), ${num(excess)} ms more than its ${num(c.idealMs)} ms of waiting; the same nodes as ${num(c.items)} root runs took ${num(s.roots5.overIdeal, 2)}×, so the tree took ${num(s.treeOverRoots, 2)}× their time. ` +
    `With a dispatcher that answers at once the tree took ${num(s.tree0.medianMs, 1)} ms (${num(s.tree0.medianMs / c.items, 2)} ms per child) and the root runs ${num(s.roots0.medianMs, 1)} ms (${num(s.roots0.medianMs / c.items, 2)} ms per run): with nothing to wait for, the wall time is the runtime's own work, and the tree's is ${num(s.atOnceTreeOverRoots, 2)}× that of the same nodes as root runs. ` +
    `One Node thread does the work of every run: when a wave's ${c.maxConcurrency} answers arrive together, their folds and commits run one after another, and each child's next dispatch starts only once its own step is committed, so the work per step adds to the ${c.dispatchMs} ms waits unless it overlaps another child's wait. ` +
    `With the ${c.dispatchMs} ms dispatcher the tree used ${num(s.tree5.cpuMs)} ms of CPU (${num(s.tree5.cpuMs / c.items, 2)} ms per child; the root runs ${num(s.roots5.cpuMs)} ms)`;
  text += s.tree5.cpuMs >= 0.8 * excess
    ? `, about as much as the ${num(excess)} ms excess or more: the excess over the ideal is the runtime's CPU work, which the waits hide only in part.`
    : `, less than the ${num(excess)} ms excess: for the rest the process waited with nothing it could run (for a core, with a load average of ${num(loadAfter, 2)} on ${cores} cores after the bench, or for the disk).`;
  d.push(text);
  d.push('');
  const pt = c.profile?.tree;
  const pr = c.profile?.roots;
  if (pt && pr && !pt.error && !pr.error) {
    const names = [...new Set([...pt.categories, ...pr.categories].map((x) => x.name))];
    const of = (prof, name) => prof.categories.find((x) => x.name === name)?.msPerRun ?? 0;
    const cats = names.map((name) => ({ name, tree: of(pt, name), roots: of(pr, name) })).filter((x) => Math.max(x.tree, x.roots) >= 0.01).sort((a, b) => b.tree - a.tree);
    const perTree = pt.totalMs / (pt.samples * c.items);
    const perRoot = pr.totalMs / (pr.samples * c.items);
    const grew = [...cats].sort((a, b) => (b.tree - b.roots) - (a.tree - a.roots)).filter((x) => x.tree - x.roots > 0.01).slice(0, 3);
    d.push(`**Where the work goes.** The two at-once workloads, ${pt.samples} trees and as many batches of ${num(c.items)} root runs, each in a process of its own under \`node --cpu-prof\` (kept as \`${pt.file}\` and \`${pr.file}\`; module loading is in both, under Node.js internals), by category as in section 1, in ms of CPU per child or per root run: ` +
      `${num(perTree, 2)} against ${num(perRoot, 2)} in all` + (grew.length > 0 ? `; the most grows ${grew.map((x) => `${x.name} (+${num(x.tree - x.roots, 2)} ms)`).join(', ')}.` : '.') +
      ' Time inside the store\'s SQLite calls counts as store.' +
      (of(pt, 'JSON.parse of event data') > 0.005 && of(pr, 'JSON.parse of event data') < 0.005
        ? ' Only the tree reads logs back (JSON.parse of event data, which the root runs do not): before it starts a child the parent looks for the child\'s log, and when a child ends it reads and folds that log to record the child\'s outcome; the fold counts as other cantbook code, with the rest of `compiler/`.'
        : ''));
    d.push('');
    d.push(mdTable(['category', 'map tree, ms per child', 'root runs, ms per run', 'difference'], [
      ...cats.map((x) => [x.name, num(x.tree, 3), num(x.roots, 3), `${x.tree - x.roots >= 0 ? '+' : ''}${num(x.tree - x.roots, 3)}`]),
      ['**all**', `**${num(perTree, 3)}**`, `**${num(perRoot, 3)}**`, `${perTree - perRoot >= 0 ? '+' : ''}${num(perTree - perRoot, 3)}`],
    ]));
    d.push('');
  }
  const st = s.storage;
  const x = s.detail;
  d.push(`**Storage.** Each ${c.dispatchMs} ms sample's file, checkpointed, against the same file just after it was opened (the schema alone): the tree grew it by **${num(st.treeBytesPerChild)} bytes per child** — everything it stored, the root's share included, over the ${num(c.items)} items; ${num(st.treeBytesPerRun)} per run over its ${num(c.items + 1)} runs — and the root runs by **${num(st.rootBytesPerRun)} bytes per run**: **${num(st.childOverRoot, 2)}×**. ` +
    `Per table with its indexes (SQLite's \`dbstat\`, whole ${num(x.pageSize)}-byte pages) and per event (the events' own columns, as in section 4), from the first round:`);
  d.push('');
  const tables = Object.entries(x.byTable).filter(([, v]) => v.treeBytesPerChild !== 0 || v.rootBytesPerRun !== 0).sort((a, b) => b[1].treeBytesPerChild - a[1].treeBytesPerChild);
  const started = (side) => side.byType.RunStarted?.bytes ?? 0;
  d.push(mdTable(['', 'per child of the map (tree / ' + num(c.items) + ')', 'per root run'], [
    ['events in the run\'s own log', num(x.child.eventsPerRun), num(x.rootRun.eventsPerRun)],
    ['… their bytes', num(x.child.eventBytesPerRun), num(x.rootRun.eventBytesPerRun)],
    ['… of which `RunStarted` (the pinned text, the inputs; a child\'s also its `parent`)', num(started(x.child)), num(started(x.rootRun))],
    ['run id, characters (in every event row, index entry and projection row)', num(x.child.runIdChars, 1), num(x.rootRun.runIdChars, 1)],
    ['the parent\'s events for it: `ChildRunStarted` + `ChildRunSettled`', `${num(x.parent.perChild.events)} (${num(x.parent.perChild.eventBytes)} bytes)`, ''],
    ['the parent\'s other events, shared out', `${num(x.parent.others.events, 2)} (${num(x.parent.others.eventBytes)} bytes)`, ''],
    ...tables.map(([name, v]) => [`file: \`${name}\``, num(v.treeBytesPerChild), num(v.rootBytesPerRun)]),
    ['**file growth in all**', `**${num(st.treeBytesPerChild)}**`, `**${num(st.rootBytesPerRun)}**`],
    ...(p ? [['PostgreSQL: schema growth (tables, indexes, TOAST)', num(p.storage.treeBytesPerChild), num(p.storage.rootBytesPerRun)]] : []),
  ]));
  d.push('');
  d.push(`What being a child costs: ${num(st.treeBytesPerChild - st.rootBytesPerRun)} bytes of file per item. The child's own ${num(x.child.eventsPerRun)} events take ${num(x.child.eventBytesPerRun - x.rootRun.eventBytesPerRun)} bytes more than a root run's: its run id is longer (${num(x.child.runIdChars, 1)} against ${num(x.rootRun.runIdChars, 1)} characters: the root's id and \`.each.<attempt>.<index>\`) in every event, and its \`RunStarted\` carries the \`parent\` reference (${num(started(x.child) - started(x.rootRun))} bytes more). ` +
    'Both kinds of run carry their own playbook text in their `RunStarted` (a run is pinned to its text; the `playbooks` table keeps each text once per file), and the root\'s carries the child\'s text once more in `pinned`. ' +
    `The parent adds two events per child, ${num(x.parent.perChild.eventBytes)} bytes, the \`ChildRunSettled\` with the child's output, and the map's output lists every child's run id, status and output once in the map node's \`NodeSucceeded\` (${num(x.parent.mapOutput.eventBytesPerChild)} bytes per child) and once in the root's context row (${num(x.parent.mapOutput.bindingBytesPerChild)} bytes per child, in \`run_bindings\`); the projection rows (\`runs\`, \`run_bindings\`, \`run_attempts\`) grow with the longer run ids and the parent's rows.`);
  d.push('');
  if (p) {
    let pg = `**On PostgreSQL** the tree took **${num(p.tree5.overIdeal, 2)}×** the ideal (${num(p.tree5.medianMs)} ms), the root runs ${num(p.roots5.overIdeal, 2)}× (tree / root runs ${num(p.treeOverRoots, 2)}); answered at once, ${num(p.tree0.overIdeal, 2)}× and ${num(p.roots0.overIdeal, 2)}×. ` +
      'There every append is a transaction of its own that waits for its WAL flush, and appends to different runs commit one after another (section 8)';
    pg += p.tree5.cpuMs < 0.6 * p.tree5.medianMs
      ? `: the process used ${num(p.tree5.cpuMs)} ms of CPU in the tree's ${num(p.tree5.medianMs)} ms, so for most of it the runs waited for the server's commits, not for the dispatcher or the CPU` +
        (p.tree0.medianMs >= 0.9 * p.tree5.medianMs ? `, which is why answering at once does not make the tree faster (${num(p.tree0.medianMs)} against ${num(p.tree5.medianMs)} ms): the ${c.dispatchMs} ms waits hide behind the commits.` : '.')
      : `; the process used ${num(p.tree5.cpuMs)} ms of CPU in the tree's ${num(p.tree5.medianMs)} ms.`;
    pg += ` The schema grew by ${num(p.storage.treeBytesPerChild)} bytes per child against ${num(p.storage.rootBytesPerRun)} per root run (${num(p.storage.childOverRoot, 2)}×; whole 8 KB pages, with the dead row versions of the updated projection rows that autovacuum had not yet reclaimed).`;
    d.push(pg);
  } else {
    d.push(`PostgreSQL not measured in this run: ${c.postgres?.error ?? 'the section did not run it'}. The SQLite figures above stand alone.`);
  }
  d.push('');
  return d;
}
