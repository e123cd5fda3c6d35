/**
 * `cantbook ui [--port N] [--host 127.0.0.1] [--agent spec]`: the local web
 * viewer (runs, pending gates, a run's statechart and timeline, approve and
 * reject). Serves until interrupted.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { EventStore } from '../index.js';
import { CliError, messageOf, usageError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';
import { agentNeedOfRun } from './runAgent.js';
import { startUiServer } from './ui/uiServer.js';

/** Code and exit code (sysexits EX_UNAVAILABLE) when the viewer cannot listen where asked. */
export const E_UI_UNAVAILABLE = 'E_UI_UNAVAILABLE';
export const UI_EXIT_CODE = 69;

/** The port used when --port is not given. */
export const DEFAULT_UI_PORT = 7357;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * Registers `ui`. Prints the URL to open (with this session's key in its
 * fragment) and serves until SIGINT/SIGTERM, then exits 0. With `--json` it
 * prints `{url, openUrl, host, port, db}` once it listens. Exit 64 for a bad
 * port, 69 when the port cannot be bound.
 */
export function registerUi(program: Command, bind: BindAction): void {
  const command = program
    .command('ui')
    .description('serve the local web viewer: runs, approvals, statecharts, timelines; approve or reject gates')
    .option('--port <n>', `port to listen on (0 picks a free one; default ${DEFAULT_UI_PORT})`)
    .option('--host <address>', 'interface to bind (default 127.0.0.1; anything else exposes run data to that network)', '127.0.0.1')
    .option('--agent <spec>', 'agent dispatcher for runs approved or retried from the page (default: the one the run remembers, else "agent" in cantbook.config.json)');
  withExamples(command, ['cantbook ui', 'cantbook ui --port 8080', "cantbook --db .cantbook/cantbook.db ui --agent 'exec:node starter/demo-agent.mjs'"]);
  command.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ port?: string; host: string; agent?: string }>();
      const port = parsePort(opts.port);
      const host = opts.host.trim();
      const sessionKey = randomBytes(32).toString('hex');
      // SQLite: viewing needs only a read-only connection (a read-only file works); a writable one is opened on the
      // first decision. A PostgreSQL store is writable as it is.
      const sqlite = ctx.database().kind === 'sqlite';
      return ctx.withReadStore(async (store) => {
        let decisions: EventStore | undefined;
        let server;
        try {
          server = await startUiServer({
            store,
            ...(sqlite ? { writableStore: () => (decisions ??= ctx.openWritableStore()) } : {}),
            host,
            port,
            sessionKey,
            label: ctx.database().label,
            dispatcherFor: async (runId) => ctx.dispatcher(opts.agent, await agentNeedOfRun(store, runId)),
            deterministicRunner: ctx.runner(),
          });
        } catch (error) {
          throw new CliError(E_UI_UNAVAILABLE, UI_EXIT_CODE, `cannot serve the viewer on ${host}:${port}: ${messageOf(error)}${port === 0 ? '' : ' (pick another --port, or 0 for any free one)'}`);
        }
        // Listen for the signals before announcing the URL: whoever reads it may stop us at once, and
        // without a listener SIGTERM's default action would kill the process instead of closing the server.
        const interrupted = untilInterrupted();
        ctx.out.data({ url: server.url, openUrl: server.openUrl, host: server.host, port: server.port, db: ctx.database().label });
        ctx.out.line(`cantbook viewer for ${ctx.database().label}`);
        ctx.out.line(`  open: ${server.openUrl}`);
        ctx.out.line('  The key in that link is this session\'s: anyone holding it can read these runs. Deciding a gate also needs its token.');
        if (!LOOPBACK.has(host)) ctx.out.note(`warning: listening on ${host}, not loopback: other machines can reach this viewer`, { always: true });
        ctx.out.line('  Ctrl-C stops it.');
        await interrupted;
        await server.close();
        await decisions?.close();
        return 0;
      });
    }),
  );
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_UI_PORT;
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port expects a number 0..65535, got '${text}'`);
  return port;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
