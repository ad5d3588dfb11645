/**
 * `tendril status [--wait] [--wait-duration D] [-o json]`: like `cilium
 * status`: agents, operator, DNS, clustermesh; datapath and routing; counts;
 * and for anything wrong, the component, the cause and a hint. Exits 1 when
 * not everything is OK.
 */
import type { Command } from 'commander';
import { collectStatus, renderStatus, statusReady, type ClusterStatus } from '../install/status.js';
import { ExitError } from './main.js';
import { TendrilError } from '../util/errors.js';

/** "90s", "5m", "2m30s" or a number of seconds -> ms. */
export function parseWaitDuration(text: string): number {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  let ms = 0;
  const re = /(\d+)(ms|h|m|s)/g;
  let m: RegExpExecArray | null;
  let used = 0;
  while ((m = re.exec(text))) {
    ms +=
      Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    used += m[0].length;
  }
  if (used !== text.length || used === 0) {
    throw new TendrilError('cli.BadDuration', `invalid duration "${text}"`, {
      hint: 'write it like 90s, 5m or 2m30s',
    });
  }
  return ms;
}

export function register(program: Command): void {
  program
    .command('status')
    .description('show the health of Tendril in a cluster (agents, operator, DNS, datapath)')
    .option('--wait', 'wait until everything is OK')
    .option('--wait-duration <duration>', 'how long --wait waits', '5m')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      async (opts: { wait?: boolean; waitDuration: string; output: string }, cmd: Command) => {
        const context = (cmd.optsWithGlobals() as { context?: string }).context;
        if (opts.output !== 'text' && opts.output !== 'json') {
          throw new TendrilError('cli.BadOutput', `unknown output format "${opts.output}"`, {
            hint: 'use -o json, or leave it out for text',
          });
        }
        const deadline = Date.now() + parseWaitDuration(opts.waitDuration);
        let st: ClusterStatus = await collectStatus(context);
        let shown = false;
        while (opts.wait && !statusReady(st) && Date.now() < deadline) {
          if (!shown && opts.output === 'text') {
            process.stderr.write('⌛ Waiting for Tendril to be ready...\n');
            shown = true;
          }
          await new Promise((r) => setTimeout(r, 1000));
          st = await collectStatus(context);
        }
        process.stdout.write(
          opts.output === 'json' ? JSON.stringify(st, null, 2) + '\n' : renderStatus(st),
        );
        if (!statusReady(st))
          throw new ExitError(
            1,
            opts.wait ? `Tendril is not ready after ${opts.waitDuration}` : '',
          );
      },
    );
}
