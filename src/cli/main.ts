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
process.on('SIGINT', () => {
  // A command that listens for SIGINT itself (the viewer) shuts down on its own terms.
  if (process.listenerCount('SIGINT') > 1) return;
  process.stderr.write('\ninterrupted: a run that was executing stays "running"; finish it later with: cantbook recover\n');
  process.exit(130);
});

const exitCode = await runCli(process.argv.slice(2), { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr });
// Let buffered output reach a pipe before exiting; exit explicitly so a lingering handle cannot keep the process alive.
process.stdout.write('', () => process.stderr.write('', () => process.exit(exitCode)));
