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
import { pollStatus } from '../install/collect.js';

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
          throw new TendrilError('CLI_BAD_OUTPUT', `unknown output format "${opts.output}"`, {
            hint: 'use -o json, or leave it out for text',
          });
        }
        let shown = false;
        // the same --wait-duration parsing and loop as `clustermesh status` (install/collect.ts)
        const st: ClusterStatus = await pollStatus(() => collectStatus(context), statusReady, {
          wait: !!opts.wait,
          waitDuration: opts.waitDuration,
          onWaiting: () => {
            if (!shown && opts.output === 'text')
              process.stderr.write('⌛ Waiting for Tendril to be ready...\n');
            shown = true;
          },
        });
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
