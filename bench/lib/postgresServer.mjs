// The PostgreSQL server of bench 8: a throwaway durable cluster started with
// scripts/pgTestCluster.sh (`--durable`: fsync and synchronous_commit on, PostgreSQL's
// defaults), or the server of CANTBOOK_BENCH_POSTGRES_URL when that is set. Plus what the
// bench reads from the server around each timed phase: WAL bytes and write transactions
// (transaction ids handed out), which PostgreSQL reports at once, and, for a cluster of our
// own, the CPU time of all its processes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { log, repoDir } from './common.mjs';

const script = join(repoDir, 'scripts', 'pgTestCluster.sh');

/**
 * Starts a durable throwaway cluster (or takes the URL of CANTBOOK_BENCH_POSTGRES_URL) and
 * returns `{url, dir, external, stop()}`. `stop` is synchronous and idempotent, and also runs
 * when the process exits for any reason (an error, SIGINT, SIGTERM), so no cluster is left.
 */
export function openBenchServer() {
  const given = process.env.CANTBOOK_BENCH_POSTGRES_URL;
  if (given) return { url: given, dir: null, external: true, stop() {} };
  const dir = mkdtempSync(join(os.tmpdir(), 'cantbook-bench-pg-'));
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    const r = spawnSync('bash', [script, 'stop', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) log(`postgres: could not stop the cluster in ${dir} (exit ${r.status ?? r.signal})`);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
  const r = spawnSync('bash', [script, 'start', dir, '--durable'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) {
    stop();
    throw new Error(`scripts/pgTestCluster.sh start ${dir} --durable failed (exit ${r.status ?? r.signal}); see ${dir}/server.log`);
  }
  return { url: r.stdout.trim(), dir, external: false, stop };
}

/** The settings that decide durability and the server's facts, for the report. */
export async function serverFacts(admin) {
  const row = (await admin.query(`SELECT version() AS version,
    current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit,
    current_setting('full_page_writes') AS full_page_writes, current_setting('wal_sync_method') AS wal_sync_method,
    current_setting('shared_buffers') AS shared_buffers, current_setting('commit_delay') AS commit_delay`)).rows[0];
  return { ...row, version: row.version.split(' on ')[0] };
}

/** LSN text 'X/Y' as a byte position. */
const lsnBytes = (lsn) => {
  const [hi, lo] = lsn.split('/');
  return Number((BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`));
};

/**
 * Where the server is now: its WAL position and its next transaction id (neither call
 * takes one), plus the cluster's CPU time when it is ours. The difference of two readings
 * is what the server did in between, cluster-wide; the bench takes them while only the side
 * being measured works.
 */
export async function serverReading(admin, server) {
  const { rows } = await admin.query('SELECT pg_current_wal_lsn()::text AS lsn, pg_snapshot_xmax(pg_current_snapshot())::text AS xid');
  return { walBytes: lsnBytes(rows[0].lsn), xid: Number(rows[0].xid), cpuMs: clusterCpuMs(server) };
}

export function readingDelta(a, b) {
  return { walBytes: b.walBytes - a.walBytes, writeTransactions: b.xid - a.xid, serverCpuMs: a.cpuMs === null || b.cpuMs === null ? null : b.cpuMs - a.cpuMs };
}

/** utime, stime, cutime, cstime of a process in ms (USER_HZ is 100 on Linux). */
function procTimes(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // proc(5) fields 4 (ppid) and 14-17 (utime, stime, cutime, cstime); the slice starts at field 3.
  return { ppid: Number(fields[1]), ms: (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10 };
}

/**
 * CPU time of the whole cluster of our own, in ms: the postmaster with the children it has
 * reaped (backends that ended) plus every live child (backends, WAL writer, checkpointer).
 * null for a server we did not start (it may be on another machine) or off Linux.
 */
function clusterCpuMs(server) {
  if (server.dir === null) return null;
  try {
    const postmaster = Number(readFileSync(join(server.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    let ms = procTimes(postmaster).ms;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const p = procTimes(entry);
        if (p.ppid === postmaster) ms += p.ms;
      } catch {
        // the process ended between the listing and the read
      }
    }
    return ms;
  } catch {
    return null;
  }
}

/**
 * The server's durable commit rate with nothing of either engine in the way: `connections`
 * connections at once, each committing `commitsEach` single-row INSERTs (autocommit, a
 * 100-byte value) into a table of `schema`, one after another. Returns commits/s.
 * With several connections, PostgreSQL's group commit lets commits that wait at the same
 * time share one WAL flush.
 */
export async function rawCommitRate(url, schema, { connections, commitsEach }) {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  try {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"; CREATE TABLE IF NOT EXISTS "${schema}".raw (id bigserial PRIMARY KEY, v text NOT NULL)`);
    const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
    const value = 'x'.repeat(100);
    const start = performance.now();
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < commitsEach; i++) await client.query(`INSERT INTO "${schema}".raw (v) VALUES ($1)`, [value]);
    }));
    const ms = performance.now() - start;
    for (const client of clients) client.release();
    return { connections, commits: connections * commitsEach, ms, commitsPerSec: (connections * commitsEach * 1000) / ms };
  } finally {
    await pool.end();
  }
}

export function adminClient(url) {
  return new pg.Client({ connectionString: url });
}

/** Drops every schema whose name starts with `prefix` (the bench's own), with what it holds. */
export async function dropSchemas(admin, prefix) {
  const { rows } = await admin.query("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", [prefix]);
  for (const { nspname } of rows) await admin.query(`DROP SCHEMA "${nspname}" CASCADE`);
  return rows.length;
}
