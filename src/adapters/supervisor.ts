/**
 * The supervisor: a small Node program every child process cantbook starts
 * runs under on POSIX, so that the child dies with the process that started
 * it (the driver: `cantbook run`, a worker, a host) even when the driver is
 * SIGKILLed and runs no JavaScript at all. SPEC §4: no two attempts of a node
 * run at once, and a recovery may only start the next attempt once every
 * process of the last one is dead.
 *
 * Why a supervisor: a child is spawned as the leader of its own process group
 * (so one kill reaches grandchildren), which also takes it out of the
 * driver's group: nothing in the kernel kills it when the driver dies. Linux's
 * `prctl(PR_SET_PDEATHSIG)` has no Node binding (and reaches only the direct
 * child); a native addon is not an option. What every POSIX kernel does for
 * any death of a process is close its file descriptors, so:
 *
 * 1. The driver spawns `process.execPath -e <SUPERVISOR_SOURCE> -- <command>
 *    <args...>` detached: the supervisor leads a new process group (and
 *    session). Its stdin, stdout and stderr are the ones the command gets; a
 *    fourth pipe on fd 3, "the link", joins it to the driver.
 * 2. The driver writes one header line on the link, `{"env": {...}}`: the
 *    command's environment, exactly, which the supervisor itself does not run
 *    with (its own environment is empty, so `NODE_OPTIONS` and friends meant
 *    for the command do not reach it; the environment is not put in argv,
 *    which other users can read).
 * 3. The supervisor starts reading the link first and spawns the command
 *    (not detached: in the supervisor's group, stdio inherited, so output
 *    goes straight to the driver's pipes with no copy) only once the header
 *    has arrived over it. So by the time the command exists, the watch does:
 *    if the driver dies at any point after spawning the supervisor, the
 *    supervisor sees end-of-file on the link (sticky: it is there whenever it
 *    reads) and never starts the command, or kills it.
 * 4. Once the command runs, the supervisor replaces its own fds 0-2 with
 *    /dev/null, so only the command's processes hold the driver's pipes (their
 *    closing still means "the command tree is done"), and ignores SIGTERM,
 *    SIGINT and SIGHUP: the driver stops an attempt by signalling the whole
 *    group, which reaches the command directly, and the supervisor stays to
 *    report how the command ended. (A stop signal that comes before the
 *    command exists ends the supervisor the default way.)
 * 5. When the command exits, the supervisor writes `{"exit": code, "signal":
 *    name}` on the link (or `{"error": {"code", "message"}}` when it could not
 *    be started) and stays: a grandchild the command left in the group is
 *    still covered while the driver stops it.
 * 6. When the link reaches end-of-file (the driver closed it because the
 *    attempt is over, or the driver died), the supervisor SIGKILLs its whole
 *    process group: itself, the command and whatever the command started.
 *
 * The link is not inherited by the command: Node marks the descriptors it
 * inherits close-on-exec when it starts (libuv's
 * `uv_disable_stdio_inheritance`), so a command can neither forge a report
 * nor hold the link (test/unit/adapters/processTree.test.ts checks it).
 *
 * Cost: one Node start per child, paid before the command starts and counted
 * in its timeout: about 50 ms per spawn where a bare `true` took 3 ms (a busy
 * 2-CPU Linux machine; `node -e ''` alone is 30-40 ms there), and about 6 MB
 * of private memory while the command runs. The program is passed with `-e`
 * rather than as a file so that it runs the same from the TypeScript sources
 * (tests), from `dist/` and from a bundle, with no path to resolve.
 *
 * Limits: a process that leaves the group (`setsid`, `setpgid`, a daemon)
 * escapes this kill as it escapes the timeout kill; Windows runs children
 * directly, as before (no process groups there).
 *
 * Internal to src/adapters (not exported from the package root).
 */

/**
 * The supervisor program (CommonJS, no dependencies), run by
 * `process.execPath -e SUPERVISOR_SOURCE -- command ...args`. Steps as in this
 * file's header. Kept in a raw string so `\n` reaches the program as written.
 */
export const SUPERVISOR_SOURCE = String.raw`'use strict';
const { spawn } = require('node:child_process');
const { closeSync, openSync } = require('node:fs');
const { Socket } = require('node:net');
const [command, ...args] = process.argv.slice(1);
process.title = ['cantbook-supervisor', command, ...args].join(' ');
let child = null;
const killGroup = () => process.kill(0, 'SIGKILL');
for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(name, () => {
    if (child !== null) return;
    process.removeAllListeners(name);
    process.kill(process.pid, name);
  });
}
const link = new Socket({ fd: 3, readable: true, writable: true });
const report = (message) => link.write(JSON.stringify(message) + '\n');
const failed = (error) => report({ error: { code: error.code, message: error.message } });
let header = '';
link.setEncoding('utf8');
link.on('end', killGroup);
link.on('close', killGroup);
link.on('error', killGroup);
link.on('data', (chunk) => {
  if (child !== null) return;
  header += chunk;
  const end = header.indexOf('\n');
  if (end !== -1) start(JSON.parse(header.slice(0, end)).env);
});
function start(env) {
  try {
    child = spawn(command, args, { env, stdio: 'inherit' });
  } catch (error) {
    child = {};
    failed(error);
    return;
  }
  child.on('error', (error) => {
    if (child.pid === undefined) failed(error);
  });
  child.on('exit', (code, signal) => report({ exit: code, signal }));
  if (child.pid === undefined) return;
  for (const fd of [0, 1, 2]) {
    closeSync(fd);
    openSync('/dev/null', fd === 0 ? 'r' : 'w');
  }
}
`;

/** The arguments for `process.execPath` that run `command args` under the supervisor. */
export function supervisorArgs(command: string, args: readonly string[]): string[] {
  return ['-e', SUPERVISOR_SOURCE, '--', command, ...args];
}

/**
 * The supervisor's own environment: empty, so nothing meant for the command
 * (`NODE_OPTIONS`, `NODE_EXTRA_CA_CERTS`, which alone doubles Node's start-up
 * time) reaches it. An Electron host's `execPath` is Electron, which needs
 * `ELECTRON_RUN_AS_NODE` to behave as Node.
 */
export function supervisorEnv(): NodeJS.ProcessEnv {
  return process.versions.electron === undefined ? {} : { ELECTRON_RUN_AS_NODE: '1' };
}

/** The header line the driver writes on the link: the command's environment, exactly. */
export function supervisorHeader(env: NodeJS.ProcessEnv): string {
  return `${JSON.stringify({ env })}\n`;
}

/** What the supervisor reports on the link about the command. */
export type SupervisorReport =
  | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'error'; code: string | undefined; message: string };

/**
 * Reads one report line from the supervisor; null for anything else (the
 * supervisor writes only these two shapes, so null means a bug, never data
 * from the command, which cannot reach the link).
 */
export function parseSupervisorReport(line: string): SupervisorReport | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const record = value as Record<string, unknown>;
  if ('exit' in record) {
    const code = typeof record.exit === 'number' ? record.exit : null;
    const signal = typeof record.signal === 'string' ? (record.signal as NodeJS.Signals) : null;
    return { kind: 'exit', code, signal };
  }
  const error = record.error;
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as Record<string, unknown>;
    return { kind: 'error', code: typeof code === 'string' ? code : undefined, message: typeof message === 'string' ? message : 'unknown error' };
  }
  return null;
}
