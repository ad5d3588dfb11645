/**
 * `tendril hubble ui [--port N] [--server ADDR]`: serves the live service map
 * on http://127.0.0.1:N/ (default 12000) until interrupted, fed with the
 * flows of the Hubble relay (every node of this cluster and of every
 * connected cluster).
 *
 * Registered by the `hubble` command group (hubble.ts), which passes the
 * relay client: `addHubbleUiCommand(hubble, openRelayFlows)`.
 */
import type { Command } from 'commander';
import type { Flow } from '../observe/flow.js';
import { DEFAULT_UI_PORT, startHubbleUi } from '../observe/ui-server.js';
import { TendrilError } from '../util/errors.js';

/** Opens the relay's follow-mode flow stream (`GetFlows{follow:true}`). */
export type OpenRelayFlows = (o: {
  server?: string;
  context?: string;
  signal: AbortSignal;
}) => AsyncIterable<Flow>;

/** Parses `--port`: an integer 1..65535, else an error naming the flag. */
export function parseUiPort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < 1 || n > 65535)
    throw new TendrilError('HUBBLE_UI_BAD_PORT', `--port "${v}" is not a port number`, {
      hint: `give an integer 1-65535 (default ${DEFAULT_UI_PORT})`,
    });
  return n;
}

function contextOf(cmd: Command): string | undefined {
  for (let p: Command | null = cmd; p; p = p.parent) {
    const v = p.opts().context as string | undefined;
    if (v) return v;
  }
  return undefined;
}

/** Adds `ui` to the `hubble` command group. */
export function addHubbleUiCommand(hubble: Command, openFlows: OpenRelayFlows): void {
  hubble
    .command('ui')
    .description(
      'serve the live service map of the mesh on localhost (default http://127.0.0.1:12000/)',
    )
    .option('--port <n>', `local port (default ${DEFAULT_UI_PORT})`)
    .option('--server <addr>', 'Hubble relay address (default: the relay of the current context)')
    .action(async (opts: { port?: string; server?: string }, cmd: Command) => {
      const port = opts.port === undefined ? DEFAULT_UI_PORT : parseUiPort(opts.port);
      const abort = new AbortController();
      const context = contextOf(cmd);
      const flows = openFlows({
        signal: abort.signal,
        ...(opts.server ? { server: opts.server } : {}),
        ...(context ? { context } : {}),
      });
      const ui = await startHubbleUi(flows, { port });
      process.stdout.write(`Hubble UI: ${ui.url} (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve, reject) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        ui.done.then(
          () =>
            reject(
              new TendrilError('HUBBLE_UI_SOURCE_ENDED', 'the relay ended the flow stream', {}),
            ),
          (err: unknown) =>
            reject(
              new TendrilError(
                'HUBBLE_UI_SOURCE_FAILED',
                'cannot read flows from the Hubble relay',
                {
                  cause: err,
                  hint: 'is Hubble enabled and the relay running? see `tendril hubble status`',
                },
              ),
            ),
        );
      }).finally(async () => {
        abort.abort();
        await ui.close();
      });
    });
}
