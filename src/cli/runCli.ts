/**
 * The `cantbook` program: global options, the commands, and the one place
 * where every failure (usage errors included) becomes `error[CODE]: message`
 * and an exit code.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { createCliContext } from './cliContext.js';
import { registerControlCommands } from './controlCommands.js';
import type { CliEnvironment, GlobalOptions } from './cliContext.js';
import { reportError, usageError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { registerExport } from './exportCommand.js';
import { registerGateCommands } from './gateCommands.js';
import { registerInspect } from './inspectCommand.js';
import { createOutput } from './output.js';
import { registerQueryCommands } from './queryCommands.js';
import { registerWatch } from './followCommand.js';
import { registerCompletion } from './completionCommand.js';
import { registerRunCommands } from './runCommands.js';
import { registerUi } from './uiCommand.js';
import { registerValidate } from './validateCommand.js';
import { registerVerify } from './verifyCommand.js';
import { registerWorker } from './workerCommand.js';

/** Commander's ways of saying "help or version was printed": not failures. */
const INFORMATIONAL = new Set(['commander.helpDisplayed', 'commander.version']);

/**
 * Builds the commander program. `bind` turns a command handler into an
 * action; {@link runCli} supplies one that records the exit code.
 */
export function createProgram(bind: BindAction, environment: Pick<CliEnvironment, 'stdout' | 'stderr'>): Command {
  const program = new Command('cantbook')
    .description('Run agent playbooks (.cantbook) as event-sourced XState machines over SQLite or PostgreSQL.')
    .version(packageVersion(), '-V, --version', 'print the cantbook version')
    .option('--db <path>', 'SQLite file or postgres:// URL (env CANTBOOK_DB; default ./.cantbook/cantbook.db)')
    .option('--json', 'machine-readable output on stdout (errors as {"error": {code, message}})')
    .showHelpAfterError(false)
    // Each command's --help also lists --db and --json, which every command takes.
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .configureOutput({
      writeOut: (text) => environment.stdout.write(text),
      writeErr: (text) => environment.stderr.write(text),
      // Usage errors are reported by runCli as error[E_USAGE]; commander's own line is dropped.
      outputError: () => undefined,
    });
  program.addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  $ cantbook validate starter/*.cantbook',
      '  $ cantbook run starter/release.cantbook --input targetVersion=1.2.0',
      '  $ cantbook approve <token> --by alice',
      '  $ cantbook log <runId>',
      '  $ cantbook verify',
      '',
      'Agents: --agent <spec> or {"agent": "exec:node starter/demo-agent.mjs"} in ./cantbook.config.json.',
      'Approval tokens are random, single-gate credentials printed once; only their SHA-256 is stored (docs/security.md).',
      'A driver holds its run\'s lease (CANTBOOK_LEASE_MS, default 30000); Ctrl-C stops its node first, then exits 130.',
      'Exit codes and a full session: docs/cli.md.',
      '',
    ].join('\n'),
  );
  registerValidate(program, bind);
  registerRunCommands(program, bind);
  registerGateCommands(program, bind);
  registerControlCommands(program, bind);
  registerWorker(program, bind);
  registerQueryCommands(program, bind);
  registerWatch(program, bind);
  registerVerify(program, bind);
  registerExport(program, bind);
  registerInspect(program, bind);
  registerUi(program, bind);
  registerCompletion(program, bind);
  return program;
}

/**
 * Runs the CLI on `argv` (without `node` and the script) and returns the exit
 * code. Never throws and never prints a stack trace: every failure is printed
 * as `error[CODE]: message` on stderr, or `{"error": {code, message}}` on
 * stdout with `--json`.
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr });
 */
export async function runCli(argv: readonly string[], environment: CliEnvironment): Promise<number> {
  let exitCode = 0;
  const bind: BindAction = (handler) => async (...args) => {
    const command = args.at(-1) as Command;
    const ctx = createCliContext(environment, command.optsWithGlobals<GlobalOptions>());
    exitCode = await handler(ctx, command);
  };
  // Before parsing succeeds we only know --json from the raw words.
  const out = createOutput({ json: argv.includes('--json'), stdout: environment.stdout, stderr: environment.stderr });
  try {
    const program = createProgram(bind, environment);
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      throw usageError('no command given');
    }
    refuseFlagLikeValues(program, argv);
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (INFORMATIONAL.has(error.code)) return 0;
      // Help printed because no command was given (exit code 1 from commander) is a usage error.
      if (error.code === 'commander.help') return error.exitCode === 0 ? 0 : reportError(out, usageError('no command given'));
      return reportError(out, usageError(error.message.replace(/^error:\s*/i, '')));
    }
    return reportError(out, error);
  }
}

/**
 * Commander gives an option that needs a value the next word, whatever it is:
 * `cantbook runs --db --json` would open a database named `--json`. A separate
 * word that starts with `-` after such an option is refused as a usage error
 * instead (a negative number and a lone `-` are values). A value that really
 * starts with `-` can be written `--option=-value`. Words after `--` are never
 * options.
 */
function refuseFlagLikeValues(program: Command, argv: readonly string[]): void {
  const takesValue = new Map<string, string>();
  const visit = (command: Command): void => {
    for (const option of command.options) {
      if (!option.required) continue;
      if (option.long !== undefined) takesValue.set(option.long, option.flags);
      if (option.short !== undefined) takesValue.set(option.short, option.flags);
    }
    for (const sub of command.commands) visit(sub);
  };
  visit(program);
  for (let i = 0; i < argv.length - 1; i += 1) {
    const word = argv[i] as string;
    if (word === '--') return;
    const flags = takesValue.get(word);
    const next = argv[i + 1] as string;
    if (flags === undefined) continue;
    if (next.startsWith('-') && next !== '-' && !/^-\d/.test(next)) {
      throw usageError(`option '${flags}' needs a value, but the next word is the option '${next}' (to pass a value that starts with '-', write ${word}=${next})`);
    }
    i += 1;
  }
}

/** The version in package.json (two levels up from src/cli or dist/cli). */
function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
