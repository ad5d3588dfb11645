/**
 * `tendril hubble observe [flags]` and `tendril hubble status`: Hubble's CLI
 * over the cluster's relay (or any observer with --server). Flags are
 * hubble observe's (src/cli/hubble-flags.ts); output formats hubble's
 * (src/observe/format.ts).
 */
import type { Command } from 'commander';
import type { Flow } from '../observe/flow.js';
import { addHubbleUiCommand } from './hubble-ui.js';
import { ObserverClient } from '../observe/client.js';
import {
  alignTable,
  formatCompact,
  formatDict,
  formatJson,
  formatJsonPb,
  formatLost,
  tableHeader,
  tableRow,
} from '../observe/format.js';
import {
  OBSERVE_FLAGS,
  parseObserveArgs,
  tlsFlags,
  type ObserveArgs,
  type TLSFlags,
} from './hubble-flags.js';
import { readMutualTLSFiles } from '../observe/tls-files.js';
import { resolveInstallTarget } from '../install/lab-target.js';
import { hubbleRelaySocketPath } from '../install/hubble.js';
import { TendrilError } from '../util/errors.js';

/** Where the CLI talks to: --server, else the context's relay socket. */
export function observerAddress(server: string | undefined, context: string | undefined): string {
  if (server) return server.startsWith('unix:') || server.includes(':') ? server : `unix:${server}`;
  const t = resolveInstallTarget(context);
  return `unix:${hubbleRelaySocketPath(t.cluster.name)}`;
}

/**
 * A client for ADDRESS, with mutual TLS from the flags' files (checked first:
 * a bad file is named with the fix).
 * @throws HubbleTLSFileError for a file that cannot be used.
 */
export function observerClient(address: string, tls: TLSFlags | undefined): ObserverClient {
  return new ObserverClient({
    address,
    ...(tls
      ? {
          tls: readMutualTLSFiles(
            tls,
            'give the CA that signed the server, and a client certificate that CA signed with its key',
          ),
        }
      : {}),
  });
}

/** Output sinks of observe (stdout and stderr in the CLI; arrays in tests). */
export interface ObserveIO {
  out: (line: string) => void;
  err: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Runs observe against a client: prints every response in the chosen format.
 * @throws ObserverClientError when the relay cannot be reached or refuses the filters.
 */
export async function runObserve(
  client: ObserverClient,
  a: ObserveArgs,
  io: ObserveIO,
): Promise<void> {
  const fo = { printNodeName: a.printNodeName };
  const rows: string[][] = [];
  let headerWidths: number[] | undefined;
  for await (const r of client.getFlows(a.request, io.signal ? { signal: io.signal } : {})) {
    if (a.output === 'jsonpb') {
      io.out(formatJsonPb(r));
      continue;
    }
    if (r.nodeStatus) {
      if (r.nodeStatus.stateChange !== 'NODE_CONNECTED')
        io.err(
          `Warning: ${r.nodeStatus.stateChange === 'NODE_UNAVAILABLE' ? 'unavailable' : r.nodeStatus.stateChange} node(s): ${r.nodeStatus.nodeNames.join(', ')}${r.nodeStatus.message ? ` (${r.nodeStatus.message})` : ''}`,
        );
      continue;
    }
    if (r.lostEvents) {
      if (a.output === 'json') io.out(formatJsonPb(r));
      else io.err(formatLost(r));
      continue;
    }
    if (!r.flow) continue;
    switch (a.output) {
      case 'compact':
        io.out(formatCompact(r, fo));
        break;
      case 'dict':
        io.out(`------------\n${formatDict(r, fo)}`);
        break;
      case 'json':
        io.out(formatJson(r));
        break;
      case 'table':
        if (a.request.follow) {
          // streaming: fixed widths from the header and the first row
          const row = tableRow(r, fo);
          if (!headerWidths) {
            const head = tableHeader(fo);
            headerWidths = head.map((h, i) => Math.max(h.length, (row[i] ?? '').length) + 2);
            io.out(alignTable([head.map((h, i) => h.padEnd(headerWidths![i]!))]));
          }
          io.out(
            row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(headerWidths![i]!))).join('   '),
          );
        } else rows.push(tableRow(r, fo));
        break;
    }
  }
  if (a.output === 'table' && !a.request.follow) io.out(alignTable([tableHeader(fo), ...rows]));
}

/** ServerStatus as hubble status prints it. */
export function formatServerStatus(
  address: string,
  s: Awaited<ReturnType<ObserverClient['serverStatus']>>,
): string {
  const pct = s.maxFlows ? ((s.numFlows / s.maxFlows) * 100).toFixed(2) : '0.00';
  const lines = [
    `Healthcheck (via ${address}): Ok`,
    `Current/Max Flows: ${s.numFlows.toLocaleString('en-US')}/${s.maxFlows.toLocaleString('en-US')} (${pct}%)`,
    `Flows/s: ${s.flowsRate.toFixed(2)}`,
    `Lost events: ${s.lostEvents}`,
  ];
  if (s.numConnectedNodes !== undefined)
    lines.push(
      `Connected Nodes: ${s.numConnectedNodes}/${s.numConnectedNodes + (s.numUnavailableNodes ?? 0)}`,
    );
  if (s.unavailableNodes.length) lines.push(`Unavailable Nodes: ${s.unavailableNodes.join(', ')}`);
  return lines.join('\n') + '\n';
}

/**
 * The relay's follow stream as flows, for `tendril hubble ui`: the newest
 * flows of the ring first (up to 1000), then every new one.
 */
export async function* openRelayFlows(o: {
  server?: string;
  context?: string;
  signal: AbortSignal;
}): AsyncIterable<Flow> {
  const client = new ObserverClient({ address: observerAddress(o.server, o.context) });
  try {
    for await (const r of client.getFlows({ number: 1000, follow: true }, { signal: o.signal }))
      if (r.flow) yield r.flow;
  } finally {
    client.close();
  }
}

export function register(program: Command): void {
  const hubble = program
    .command('hubble')
    .description('observe flows (Hubble): hubble observe, hubble status, hubble ui');
  addHubbleUiCommand(hubble, openRelayFlows);
  hubble
    .command('observe')
    .description("show flows, with hubble observe's flags")
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption('-h, --help', 'show the flags')
    .addHelpText('after', `\nFlags:\n${OBSERVE_FLAGS.map((f) => `  ${f}`).join('\n')}\n`)
    .action(async (_opts: unknown, cmd: Command) => {
      const a = parseObserveArgs(cmd.args);
      const context = a.context ?? (cmd.optsWithGlobals() as { context?: string }).context;
      const address = observerAddress(a.server, context);
      const client = observerClient(address, a.tls);
      const ac = new AbortController();
      const onSig = () => ac.abort();
      process.once('SIGINT', onSig);
      try {
        await runObserve(client, a, {
          out: (l) => process.stdout.write(`${l}\n`),
          err: (l) => process.stderr.write(`${l}\n`),
          signal: ac.signal,
        });
      } finally {
        process.off('SIGINT', onSig);
        client.close();
      }
    });
  hubble
    .command('status')
    .description("the relay's ServerStatus: flows, rate, lost events, connected nodes")
    .option('--server <address>', 'an observer address instead of the cluster relay')
    .option('--tls-ca-cert-files <file>', 'with --server: the CA of the server (mutual TLS)')
    .option('--tls-client-cert-file <file>', 'with --server: a client certificate that CA signed')
    .option('--tls-client-key-file <file>', 'its key')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      async (
        opts: {
          server?: string;
          output: string;
          tlsCaCertFiles?: string;
          tlsClientCertFile?: string;
          tlsClientKeyFile?: string;
        },
        cmd: Command,
      ) => {
        if (opts.output !== 'text' && opts.output !== 'json')
          throw new TendrilError('CLI_BAD_FLAG', `-o: unknown output format "${opts.output}"`, {
            hint: 'use -o json, or leave it out for text',
          });
        const context = (cmd.optsWithGlobals() as { context?: string }).context;
        const address = observerAddress(opts.server, context);
        const tls = tlsFlags(
          { ca: opts.tlsCaCertFiles, cert: opts.tlsClientCertFile, key: opts.tlsClientKeyFile },
          opts.server,
        );
        const client = observerClient(address, tls);
        try {
          const s = await client.serverStatus();
          process.stdout.write(
            opts.output === 'json'
              ? JSON.stringify(s, null, 2) + '\n'
              : formatServerStatus(address, s),
          );
        } finally {
          client.close();
        }
      },
    );
}
