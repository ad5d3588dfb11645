/**
 * `tendril policy get [-n NS] [--node N]`: the policy each node computed for its
 * endpoints (per direction: enforced or not, the policies selecting it, the map
 * entries and the rule behind each).
 * `tendril policy trace --from-pod NS/POD|--from-identity ID --to-pod NS/POD|--to-ip IP --dport 80/TCP`:
 * ALLOWED or DENIED, naming the policy and rule that decided, computed from the
 * nodes' entries exactly as the datapath looks them up. `--to-ip` traces the
 * local endpoint with that address, or else (a pod of another cluster, a node,
 * the world) the source's egress alone against the address's identity in the
 * ipcache (world when no prefix holds it), as the datapath resolves it.
 */
import type { Command } from 'commander';
import { resolveInstallTarget } from '../install/lab-target.js';
import { AgentClient } from '../agent/api/client.js';
import { agentSocketPath } from '../install/lab-daemon-config.js';
import type { EndpointPolicyReport } from '../agent/policy.js';
import type { LabCluster } from '../lab/state.js';
import type { EndpointInfo, IPCacheEntry } from '../agent/api/types.js';
import {
  PROTO,
  WILDCARD_IDENTITY,
  entryKey,
  formatPortPrefix,
  lookupVerdict,
  type DirectionPolicy,
  type PolicyEntry,
} from '../policy/index.js';
import { describeIdentity } from '../identity/numeric.js';
import { TendrilError } from '../util/errors.js';

const w = (s: string) => process.stdout.write(s);

/** Every node's endpoint policies (nodes whose agent does not answer are named in `missing`). */
async function collect(
  c: LabCluster,
  node?: string,
): Promise<{ reports: Array<EndpointPolicyReport & { node: string }>; missing: string[] }> {
  const reports: Array<EndpointPolicyReport & { node: string }> = [];
  const missing: string[] = [];
  for (const n of c.nodes) {
    if (node && n.name !== node) continue;
    try {
      const list = await new AgentClient(agentSocketPath(c.name, n.name), {
        timeoutMs: 3000,
      }).request<EndpointPolicyReport[]>('GET', '/v1/policy');
      for (const r of list) reports.push({ ...r, node: n.name });
    } catch {
      missing.push(n.name);
    }
  }
  return { reports, missing };
}

function who(identity: number): string {
  return identity === WILDCARD_IDENTITY ? 'any identity' : `identity ${describeIdentity(identity)}`;
}

function toDirection(d: EndpointPolicyReport['ingress']): DirectionPolicy {
  const entries = new Map<string, PolicyEntry>();
  for (const e of d.entries) entries.set(entryKey(e), { ...e, origin: { rule: e.rule } });
  return { enforced: d.enforced, entries, policies: [] };
}

/** Parses "80/TCP" (protocol default TCP), "ICMP". @throws TendrilError cli.BadPort */
export function parseDport(text: string): { protocol: number; port: number } {
  const m = /^(?:(\d{1,5})(?:\/(TCP|UDP|SCTP))?|(ICMP))$/i.exec(text.trim());
  const port = m?.[1] === undefined ? 0 : Number(m[1]);
  if (!m || port > 65535 || (m[1] !== undefined && port === 0))
    throw new TendrilError(
      'CLI_BAD_PORT',
      `--dport ${text}: expected PORT[/TCP|UDP|SCTP] or ICMP`,
      {
        hint: 'e.g. --dport 80/TCP, --dport 53/UDP',
      },
    );
  if (m[3]) return { protocol: PROTO.ICMP, port: 0 };
  const name = (m[2] ?? 'TCP').toUpperCase() as 'TCP' | 'UDP' | 'SCTP';
  return { protocol: PROTO[name], port };
}

function splitPod(text: string, flag: string): { namespace: string; name: string } {
  const i = text.indexOf('/');
  if (i <= 0 || i === text.length - 1)
    throw new TendrilError('CLI_BAD_POD', `${flag} ${text}: expected NAMESPACE/POD`, {
      hint: `e.g. ${flag} default/client`,
    });
  return { namespace: text.slice(0, i), name: text.slice(i + 1) };
}

async function get(c: LabCluster, o: { namespace?: string; node?: string }): Promise<void> {
  const { reports, missing } = await collect(c, o.node);
  for (const r of reports) {
    if (o.namespace && r.podNamespace !== o.namespace) continue;
    w(
      `${r.podNamespace}/${r.podName}  endpoint ${r.endpointId} on ${r.node}, identity ${who(r.identity)}, enforcement ${r.enforcement}\n`,
    );
    for (const dir of ['ingress', 'egress'] as const) {
      const d = r[dir];
      w(
        `  ${dir}: ${d.enforced ? `enforced (default deny) by ${d.policies.join(', ')}` : 'not enforced (everything allowed unless denied)'}\n`,
      );
      for (const e of d.entries)
        w(
          `    ${who(e.identity)}  ${formatPortPrefix(e)}  ${e.deny ? 'DENY' : 'allow'}  ${e.rule}\n`,
        );
    }
  }
  if (reports.length === 0) w('No endpoints with computed policy.\n');
  for (const n of missing) w(`(the agent on ${n} does not answer: see \`tendril status\`)\n`);
}

async function trace(
  c: LabCluster,
  o: { fromPod?: string; fromIdentity?: string; toPod?: string; toIp?: string; dport: string },
): Promise<void> {
  const { protocol, port } = parseDport(o.dport);
  if ((o.toPod === undefined) === (o.toIp === undefined))
    throw new TendrilError(
      'CLI_MISSING_FLAG',
      'give exactly one of --to-pod NS/POD or --to-ip IP',
      {
        hint: 'e.g. tendril policy trace --from-pod default/client --to-ip 10.2.1.5 --dport 80/TCP',
      },
    );
  if (o.toIp !== undefined && ipv4ToInt(o.toIp) === undefined)
    throw new TendrilError('CLI_BAD_IP', `--to-ip ${o.toIp}: not an IPv4 address`, {
      hint: 'e.g. --to-ip 10.2.1.5 (IPv6 is not policed yet)',
    });
  const { reports, missing } = await collect(c);
  const find = (p: { namespace: string; name: string }) =>
    reports.find((r) => r.podNamespace === p.namespace && r.podName === p.name);
  let dst: (EndpointPolicyReport & { node: string }) | undefined;
  let toLabel: string;
  let dstIdentity: number | undefined;
  if (o.toIp !== undefined) {
    const { endpoints, ipcache } = await addresses(c);
    const ep = endpoints.find((e) => e.ip === o.toIp);
    if (ep) dst = find({ namespace: ep.podNamespace, name: ep.podName });
    toLabel = ep ? `${ep.podNamespace}/${ep.podName} (${o.toIp})` : o.toIp;
    dstIdentity = dst?.identity ?? ipcacheIdentity(ipcache, o.toIp);
  } else {
    toLabel = o.toPod!;
    dst = find(splitPod(o.toPod!, '--to-pod'));
    if (!dst)
      throw new TendrilError(
        'CLI_UNKNOWN_ENDPOINT',
        `pod ${o.toPod} has no endpoint on any node of ${c.name}${missing.length ? ` (agents not answering: ${missing.join(', ')})` : ''}`,
        { hint: 'is the pod running in this cluster? see `tendril get pods -n NS`' },
      );
    dstIdentity = dst.identity;
  }
  let srcIdentity: number;
  let src: (EndpointPolicyReport & { node: string }) | undefined;
  if (o.fromPod) {
    const from = splitPod(o.fromPod, '--from-pod');
    src = find(from);
    if (!src)
      throw new TendrilError(
        'CLI_UNKNOWN_ENDPOINT',
        `pod ${o.fromPod} has no endpoint in ${c.name}`,
        {
          hint: 'for a pod of another cluster give its identity: --from-identity ID (tendril debug identities)',
        },
      );
    srcIdentity = src.identity;
  } else if (o.toIp !== undefined && !dst)
    throw new TendrilError(
      'CLI_MISSING_FLAG',
      `--to-ip ${o.toIp} is not an endpoint of ${c.name}: give the source as --from-pod NS/POD`,
      { hint: 'only the egress of a local pod can be traced to an address outside the cluster' },
    );
  else if (o.fromIdentity && /^\d+$/.test(o.fromIdentity)) srcIdentity = Number(o.fromIdentity);
  else
    throw new TendrilError('CLI_MISSING_FLAG', 'give --from-pod NS/POD or --from-identity ID', {
      hint: 'e.g. tendril policy trace --from-pod default/client --to-pod default/server --dport 80/TCP',
    });
  const r = traceReport({
    src,
    dst,
    dstIdentity,
    srcIdentity,
    protocol,
    port,
    from: o.fromPod ?? 'identity',
    to: toLabel,
  });
  w(r.lines.join('\n') + '\n');
}

/** The endpoints and ipcache of the first node whose agent answers. */
async function addresses(
  c: LabCluster,
): Promise<{ endpoints: EndpointInfo[]; ipcache: IPCacheEntry[] }> {
  const endpoints: EndpointInfo[] = [];
  let ipcache: IPCacheEntry[] | undefined;
  for (const n of c.nodes) {
    const client = new AgentClient(agentSocketPath(c.name, n.name), { timeoutMs: 3000 });
    try {
      endpoints.push(...(await client.endpoints()));
      ipcache ??= await client.ipcache();
    } catch {
      // not answering: named by collect()
    }
  }
  if (!ipcache)
    throw new TendrilError('CLI_AGENT_UNAVAILABLE', `no agent of ${c.name} answers`, {
      hint: 'see `tendril status`',
    });
  return { endpoints, ipcache };
}

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return undefined;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/**
 * The identity of IP as the datapath resolves it: the ipcache's longest
 * prefix holding it, world (2) when none does.
 */
export function ipcacheIdentity(entries: readonly IPCacheEntry[], ip: string): number {
  const addr = ipv4ToInt(ip);
  let best = -1;
  let identity = 2;
  if (addr === undefined) return identity;
  for (const e of entries) {
    const [net, lenText] = e.prefix.split('/');
    const len = lenText === undefined ? 32 : Number(lenText);
    const base = ipv4ToInt(net ?? '');
    if (base === undefined || len <= best) continue;
    const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
    if ((addr & mask) >>> 0 === (base & mask) >>> 0) {
      best = len;
      identity = e.identity;
    }
  }
  return identity;
}

/**
 * Input of traceReport: the endpoints' reports (the source may be absent: a
 * remote pod; the destination too: an address that is not a local endpoint,
 * then only the source's egress is traced, against DSTIDENTITY).
 */
export interface TraceInput {
  src?: EndpointPolicyReport;
  dst?: EndpointPolicyReport;
  /** The destination's identity (default dst.identity). */
  dstIdentity?: number;
  srcIdentity: number;
  protocol: number;
  port: number;
  from: string;
  to: string;
}

/** The lines of `policy trace` and the verdict, from the endpoints' computed entries. */
export function traceReport(t: TraceInput): { allowed: boolean; lines: string[] } {
  const what =
    t.protocol === PROTO.ICMP
      ? 'ICMP'
      : formatPortPrefix({ protocol: t.protocol, port: t.port, bits: 16 });
  const dstIdentity = t.dstIdentity ?? t.dst?.identity ?? 2;
  const lines = [`from ${t.from} (${who(t.srcIdentity)}) to ${t.to} (${who(dstIdentity)}) ${what}`];
  let allowed = true;
  const verdictLine = (label: string, d: EndpointPolicyReport['ingress'], peer: number): void => {
    const v = lookupVerdict(toDirection(d), peer, t.protocol, t.port);
    if (!d.enforced && v.allowed && v.entry?.origin.rule === 'not-enforced')
      lines.push(`  ${label}: ALLOWED (no policy selects it in this direction)`);
    else if (v.allowed) lines.push(`  ${label}: ALLOWED by ${v.entry!.origin.rule}`);
    else if (v.reason === 'deny')
      lines.push(`  ${label}: DENIED by ${v.entry!.origin.rule} (deny rules win)`);
    else
      lines.push(
        `  ${label}: DENIED: no rule allows ${who(peer)} on ${what} (default deny by ${d.policies.join(', ') || 'enforcement always'})`,
      );
    allowed &&= v.allowed;
  };
  if (t.src) verdictLine(`egress of ${t.from}`, t.src.egress, dstIdentity);
  else lines.push('  egress: not traced (the source is not an endpoint of this cluster)');
  if (!t.dst)
    lines.push(
      `  ingress of ${t.to}: not traced (not an endpoint of this cluster; its own cluster's policy decides)`,
    );
  else if (
    !t.dst.ingress.enforced &&
    t.dst.ingress.policies.length === 0 &&
    t.dst.ingress.entries.every((e) => !e.deny)
  )
    lines.push(`  ingress of ${t.to}: ALLOWED: no policy selects the destination`);
  else verdictLine(`ingress of ${t.to}`, t.dst.ingress, t.srcIdentity);
  lines.push(`verdict: ${allowed ? 'ALLOWED' : 'DENIED'}`);
  return { allowed, lines };
}

/** Registers `tendril policy`. */
export function register(program: Command): void {
  const policy = program
    .command('policy')
    .description('network policy as the nodes computed it (get, trace)');
  const ctx = (cmd: Command) => (cmd.optsWithGlobals() as { context?: string }).context;
  policy
    .command('get')
    .description(
      "every endpoint's policy: enforcement per direction and the map entries with their rules",
    )
    .option('-n, --namespace <ns>', 'only endpoints of this namespace')
    .option('--node <node>', 'only this node')
    .action(async (o: { namespace?: string; node?: string }, cmd: Command) =>
      get(resolveInstallTarget(ctx(cmd)).cluster, o),
    );
  policy
    .command('trace')
    .description('would this connection be allowed? names the deciding policy and rule')
    .option('--from-pod <ns/pod>', 'the client pod')
    .option('--from-identity <id>', 'the client identity (e.g. a pod of another cluster)')
    .option('--to-pod <ns/pod>', 'the server pod')
    .option('--to-ip <ip>', 'the destination address (a pod of any cluster, a node, the world)')
    .requiredOption('--dport <port/proto>', 'destination port and protocol, e.g. 80/TCP')
    .action(
      async (
        o: {
          fromPod?: string;
          fromIdentity?: string;
          toPod?: string;
          toIp?: string;
          dport: string;
        },
        cmd: Command,
      ) => trace(resolveInstallTarget(ctx(cmd)).cluster, o),
    );
}
