#!/usr/bin/env node
/**
 * The `cantbook` executable (package.json `bin`). Wires the process to
 * {@link runCli} and makes sure nothing escapes as a stack trace: even a
 * crash outside a command prints `error[E_INTERNAL]: message` only.
 */
import { E_INTERNAL, INTERNAL_EXIT_CODE, messageOf } from './cliErrors.js';
import { runCli } from './runCli.js';

const json = process.argv.includes('--json');

function crash(error: unknown): void {
  const message = `unexpected error: ${messageOf(error)}`;
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: E_INTERNAL, message } })}\n`);
  else process.stderr.write(`error[${E_INTERNAL}]: ${message}\n`);
  process.exit(INTERNAL_EXIT_CODE);
}

process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
// Commands that drive runs (src/cli/shutdown.ts) and the viewer listen for SIGINT and SIGTERM themselves and
// stop on their own terms: a driver first stops its node's processes and records nothing false. Any other
// command holds nothing that needs stopping and exits at once, with the shell's code for the signal.
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    if (process.listenerCount(signal) > 1) return;
    process.exit(code);
  });
}

const exitCode = await runCli(process.argv.slice(2), { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr });
// Let buffered output reach a pipe before exiting; exit explicitly so a lingering handle cannot keep the process alive.
process.stdout.write('', () => process.stderr.write('', () => process.exit(exitCode)));
