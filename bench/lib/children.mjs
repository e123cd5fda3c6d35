// The bench's side of its long-lived child processes (bench/lib/workerProcess.mjs,
// bench/lib/postgresProcess.mjs): fork one, wait for its messages by type, count the drives
// worker children report, fail when they stall, and make sure none outlives the bench. The
// child's side is bench/lib/childInbox.mjs.
import { fork } from 'node:child_process';
import { relative } from 'node:path';
import { nowMs, repoDir } from './common.mjs';

// Every child still running; killed when the bench exits, however it exits.
const live = new Set();
process.on('exit', killChildren);

/** Kills (SIGKILL) every child forked here that is still running. */
export function killChildren() {
  for (const child of live) child.kill('SIGKILL');
}

/**
 * Forks one long-lived child, `node <path> <mode> ...args`, on an IPC channel. Returns
 * {child, mode, ready, next, send, stop}: `ready` is its {type: 'ready'} message, once it has
 * loaded and warmed up; `next(type, onOther)` the next message of that type, handing any
 * other message that arrives meanwhile to `onOther`, and rejects if the child dies first;
 * `send` does nothing once the child has exited; `stop` disconnects it (the child exits on
 * disconnect).
 */
export function forkChild(path, mode, { args = [], execArgv } = {}) {
  const child = fork(path, [mode, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...(execArgv === undefined ? {} : { execArgv }) });
  live.add(child);
  const handlers = new Set();
  child.on('message', (m) => {
    for (const h of [...handlers]) h(m);
  });
  let exited = false;
  const gone = new Promise((resolve) => child.once('exit', (code, signal) => {
    exited = true;
    live.delete(child);
    resolve(new Error(`${relative(repoDir, path)} ${mode} (pid ${child.pid}) exited with ${code ?? signal}`));
  }));
  /** The next message of this type; rejects if the child dies first. */
  const next = (type, onOther) => new Promise((resolve, reject) => {
    const h = (m) => {
      if (m.type === type) {
        handlers.delete(h);
        resolve(m);
      } else onOther?.(m);
    };
    handlers.add(h);
    void gone.then((error) => {
      handlers.delete(h);
      reject(error);
    });
  });
  return { child, mode, ready: next('ready'), next, send: (m) => !exited && child.send(m), stop: () => child.disconnect() };
}

/**
 * Waits for `done` to resolve and returns its value, failing loudly when the children stop
 * making progress: throws once `progress()` has not changed for `stallMs`.
 */
export async function withinStall(done, progress, what, stallMs) {
  let last = progress();
  for (;;) {
    let timer;
    const tick = new Promise((resolve) => (timer = setTimeout(() => resolve('tick'), stallMs)));
    const outcome = await Promise.race([done, tick]);
    clearTimeout(timer);
    if (outcome !== 'tick') return outcome;
    const now = progress();
    if (now === last) throw new Error(`${what}: no progress for ${stallMs / 1000} s (${now} done)`);
    last = now;
  }
}

/**
 * Tallies the {type: 'driven', status} messages of worker children (pass `onDriven` to each
 * child's next() as its onOther): `done` resolves with the time (nowMs) at which the `runs`th
 * drive ended, `driven()` is how many have ended so far and `statuses` how they ended.
 */
export function countDrives(runs) {
  const statuses = {};
  let driven = 0;
  let allDriven;
  const done = new Promise((resolve) => (allDriven = resolve));
  const onDriven = (m) => {
    if (m.type !== 'driven') return;
    statuses[m.status] = (statuses[m.status] ?? 0) + 1;
    if (++driven === runs) allDriven(nowMs());
  };
  return { done, onDriven, statuses, driven: () => driven };
}
