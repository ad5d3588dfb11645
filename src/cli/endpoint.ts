/**
 * `tendril endpoint list [-n NS]` and `tendril endpoint get POD [-n NS] [-o json|jsonpath=TEMPLATE]`:
 * the endpoints of every node (as `cilium-dbg endpoint list|get`), with their identity and the
 * policy in effect per direction, from the agents' APIs. `-o jsonpath='{.status.identity.id}'`
 * works as in Cilium's troubleshooting guide.
 */
import { parseJsonPath } from '../k8s/jsonpath.js';
import type { Command } from 'commander';
import { resolveInstallTarget } from '../install/lab-target.js';
import { AgentClient } from '../agent/api/client.js';
import { agentSocketPath } from '../install/lab-daemon-config.js';
import type { EndpointInfo } from '../agent/api/types.js';
import type { EndpointPolicyReport } from '../agent/policy.js';
import type { LabCluster } from '../lab/state.js';
import { renderTable } from '../k8s/printers.js';
import { TendrilError } from '../util/errors.js';

/** An endpoint as `endpoint get -o json` shows it. */
export interface EndpointView {
  id: number;
  node: string;
  pod: { namespace: string; name: string };
  status: {
    state: string;
    identity: { id: number; labels: Record<string, string> };
    networking: { addressing: Array<{ ipv4: string }>; interface: string };
    policy: {
      ingress: { enforcing: boolean; policies: string[]; entries: number };
      egress: { enforcing: boolean; policies: string[]; entries: number };
    };
  };
}

/** Builds the view of one endpoint from the agent's endpoint and policy answers. */
export function endpointView(
  node: string,
  ep: EndpointInfo,
  p?: EndpointPolicyReport,
): EndpointView {
  const dir = (d?: EndpointPolicyReport['ingress']) => ({
    enforcing: d?.enforced ?? false,
    policies: d?.policies ?? [],
    entries: d?.entries.length ?? 0,
  });
  return {
    id: ep.id,
    node,
    pod: { namespace: ep.podNamespace, name: ep.podName },
    status: {
      state: ep.state,
      identity: { id: ep.identity, labels: ep.labels },
      networking: { addressing: [{ ipv4: ep.ip }], interface: ep.hostIfName },
      policy: { ingress: dir(p?.ingress), egress: dir(p?.egress) },
    },
  };
}

async function collect(c: LabCluster): Promise<EndpointView[]> {
  const out: EndpointView[] = [];
  for (const n of c.nodes) {
    const client = new AgentClient(agentSocketPath(c.name, n.name), { timeoutMs: 3000 });
    const eps = await client.endpoints().catch(() => undefined);
    if (!eps) continue;
    const pol = await client.request<EndpointPolicyReport[]>('GET', '/v1/policy').catch(() => []);
    for (const ep of eps)
      out.push(
        endpointView(
          n.name,
          ep,
          pol.find((p) => p.endpointId === ep.id),
        ),
      );
  }
  return out;
}

const enforcement = (d: { enforcing: boolean }) => (d.enforcing ? 'Enabled' : 'Disabled');

/** Registers `tendril endpoint`. */
export function register(program: Command): void {
  const endpoint = program
    .command('endpoint')
    .description("the nodes' endpoints with identity and policy enforcement");
  const ctx = (cmd: Command) => (cmd.optsWithGlobals() as { context?: string }).context;
  endpoint
    .command('list')
    .description('every endpoint of the cluster')
    .option('-n, --namespace <ns>', 'only this namespace')
    .action(async (o: { namespace?: string }, cmd: Command) => {
      const list = (await collect(resolveInstallTarget(ctx(cmd)).cluster)).filter(
        (e) => !o.namespace || e.pod.namespace === o.namespace,
      );
      process.stdout.write(
        renderTable(
          [
            'ENDPOINT',
            'NODE',
            'POD',
            'IPV4',
            'IDENTITY',
            'INGRESS ENFORCEMENT',
            'EGRESS ENFORCEMENT',
            'STATE',
          ],
          list.map((e) => [
            e.id,
            e.node,
            `${e.pod.namespace}/${e.pod.name}`,
            e.status.networking.addressing[0]?.ipv4 ?? '',
            e.status.identity.id,
            enforcement(e.status.policy.ingress),
            enforcement(e.status.policy.egress),
            e.status.state,
          ]),
        ),
      );
    });
  endpoint
    .command('get <pod>')
    .description('one endpoint by its pod name')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('-o, --output <format>', 'json or jsonpath=TEMPLATE', 'json')
    .action(async (pod: string, o: { namespace: string; output: string }, cmd: Command) => {
      const c = resolveInstallTarget(ctx(cmd)).cluster;
      const e = (await collect(c)).find(
        (x) => x.pod.namespace === o.namespace && x.pod.name === pod,
      );
      if (!e)
        throw new TendrilError(
          'CLI_UNKNOWN_ENDPOINT',
          `no endpoint for pod ${o.namespace}/${pod} in ${c.name}`,
          {
            hint: 'see `tendril endpoint list`',
          },
        );
      if (o.output === 'json') process.stdout.write(JSON.stringify(e, null, 2) + '\n');
      else if (o.output.startsWith('jsonpath='))
        process.stdout.write(parseJsonPath(o.output.slice('jsonpath='.length)).execute(e));
      else
        throw new TendrilError('CLI_BAD_OUTPUT', `unknown output format "${o.output}"`, {
          hint: 'use -o json or -o jsonpath={.status.identity.id}',
        });
    });
}
