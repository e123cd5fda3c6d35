// The peers live in their own package folders (bench/peers/langgraph, bench/peers/dbos) so
// cantbook's own install stays lean. Their node_modules are gitignored and installed here on
// first use, from each folder's package-lock.json, before any timing.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchDir, log, nowMs, round } from './common.mjs';

export const langGraphDir = join(benchDir, 'peers', 'langgraph');
export const dbosDir = join(benchDir, 'peers', 'dbos');

function installedVersion(name, dir = langGraphDir) {
  const file = join(dir, 'node_modules', name, 'package.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).version : null;
}

/** `npm ci` into a peer's folder; returns how long it took. */
function npmCi(dir, what) {
  log(`${what}: installing the peer into ${dir} (npm ci, first use only) ...`);
  const start = nowMs();
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const child = spawnSync(npm, ['ci', '--prefix', dir, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
  const installMs = round(nowMs() - start);
  if (child.status !== 0) throw new Error(`npm ci --prefix ${dir} failed (exit ${child.status ?? child.signal})`);
  return installMs;
}

function isInstalled() {
  return (
    installedVersion('@langchain/langgraph') !== null &&
    installedVersion('@langchain/langgraph-checkpoint-sqlite') !== null &&
    existsSync(join(langGraphDir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))
  );
}

/**
 * Installs the peer from its package-lock.json when it is missing (`npm ci`, which
 * compiles better-sqlite3 from source: about a minute, more on a busy machine; the
 * peer's package.json approves that install script for npm 11 in "allowScripts").
 * Returns what it did; throws when the install fails or resolves a better-sqlite3
 * other than 12.x (13.x needs Node 22 and crashes on Node 20).
 */
export function ensureLangGraphPeer() {
  let installMs = null;
  if (!isInstalled()) {
    installMs = npmCi(langGraphDir, 'langgraph');
    if (!isInstalled()) throw new Error(`npm ci --prefix ${langGraphDir} finished but LangGraph or better-sqlite3 is still missing`);
  }
  const sqlite = installedVersion('better-sqlite3');
  if (!sqlite.startsWith('12.')) {
    throw new Error(`the peer resolved better-sqlite3 ${sqlite}; it must be 12.x (13.x crashes on Node 20): fix bench/peers/langgraph/package-lock.json`);
  }
  return { installedNow: installMs !== null, installMs };
}

/**
 * Installs the DBOS Transact peer (bench/peers/dbos) from its package-lock.json when it is
 * missing (`npm ci`: pure JavaScript, no install scripts, a few seconds). Returns what it did
 * and the version installed; throws when the install fails.
 */
export function ensureDbosPeer() {
  let installMs = null;
  const installed = () => installedVersion('@dbos-inc/dbos-sdk', dbosDir) !== null && installedVersion('pg', dbosDir) !== null;
  if (!installed()) {
    installMs = npmCi(dbosDir, 'postgres');
    if (!installed()) throw new Error(`npm ci --prefix ${dbosDir} finished but @dbos-inc/dbos-sdk or pg is still missing`);
  }
  return { installedNow: installMs !== null, installMs, dbos: installedVersion('@dbos-inc/dbos-sdk', dbosDir) };
}
