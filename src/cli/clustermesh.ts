/**
 * `tendril clustermesh ...`, as cilium's CLI:
 *
 *   clustermesh enable  --context C [--service-type NodePort|LoadBalancer]
 *   clustermesh disable --context C
 *   clustermesh connect --context A --destination-context B[,C...] [--connection-mode bidirectional|unicast|mesh] [--allow-mismatching-ca]
 *   clustermesh disconnect --context A --destination-context B[,C...] [--connection-mode ...]
 *   clustermesh status [--context C] [--wait] [--wait-duration D] [-o json]
 *
 * --context may also be given before the group (`tendril --context C clustermesh status`).
 */
import type { Command } from 'commander';
import { ExitError } from './main.js';
import { enableClusterMesh, disableClusterMesh } from '../install/clustermesh/enable.js';
import {
  connectClusters,
  disconnectClusters,
  type ConnectionMode,
} from '../install/clustermesh/connect.js';
import {
  gatherMeshStatus,
  renderMeshStatus,
  type MeshStatusReport,
} from '../install/clustermesh/status-report.js';
import { pollStatus } from '../install/collect.js';
import {
  connectKubernetesClusters,
  disconnectKubernetesClusters,
  enableKubernetesMesh,
  kubernetesTargetOf,
} from '../install/clustermesh/kubernetes.js';
import type { KubernetesTarget } from '../install/target.js';
import type { ServiceType } from '../clustermesh/mesh-files.js';
import { TendrilError } from '../util/errors.js';

const say = (line: string) => process.stdout.write(line + '\n');

function contextOf(cmd: Command, own: string | undefined): string | undefined {
  if (own) return own;
  let p: Command | null = cmd.parent;
  while (p) {
    const v = p.opts().context as string | undefined;
    if (v) return v;
    p = p.parent;
  }
  return undefined;
}

function serviceType(v: string | undefined): ServiceType | undefined {
  if (v === undefined) return undefined;
  const n = v.toLowerCase();
  if (n === 'nodeport') return 'NodePort';
  if (n === 'loadbalancer') return 'LoadBalancer';
  throw new TendrilError('CLUSTERMESH_BAD_SERVICE_TYPE', `service type "${v}" is not supported`, {
    hint: "use NodePort (a port on the control plane node's underlay address) or LoadBalancer (an address from the lab pool 172.30.255.0/24); ClusterIP is not reachable from other clusters",
  });
}

function splitList(v: string[] | string | undefined): string[] {
  const arr = Array.isArray(v) ? v : v ? [v] : [];
  return arr
    .flatMap((x) => x.split(','))
    .map((x) => x.trim())
    .filter(Boolean);
}

/**
 * Runs `run` when every context is a Kubernetes cluster (not a lab cluster
 * here); returns false when they are all lab clusters. A mix is refused.
 */
async function onKubernetes(
  source: string | undefined,
  destinations: string[],
  run: (src: KubernetesTarget, dests: KubernetesTarget[]) => Promise<unknown>,
): Promise<boolean> {
  const all = [source, ...destinations].map((c) => kubernetesTargetOf(c));
  try {
    const k8s = all.filter((t): t is KubernetesTarget => t !== undefined);
    if (k8s.length === 0) return false;
    if (k8s.length !== all.length || destinations.length === 0)
      throw new TendrilError(
        'CLUSTERMESH_MIXED_TARGETS',
        destinations.length === 0
          ? 'no destination given'
          : 'some of these contexts are lab clusters on this machine and some are Kubernetes clusters; connect works within one kind',
        {
          hint:
            destinations.length === 0
              ? 'pass --destination-context CONTEXT[,CONTEXT...]'
              : 'connect lab clusters with lab clusters, Kubernetes clusters with Kubernetes clusters',
        },
      );
    await run(k8s[0]!, k8s.slice(1));
    return true;
  } finally {
    for (const t of all) t?.close();
  }
}

/** The options connect and disconnect share (see connectLike). */
interface ConnectLikeOptions {
  context?: string;
  destinationContext?: string[];
  connectionMode: string;
}

/**
 * The body of `clustermesh connect` and `disconnect`: ON_KUBERNETES when the
 * contexts name Kubernetes clusters (see onKubernetes), else ON_LAB with the
 * lab clusters' options (context, destinations, mode, say).
 */
async function connectOrDisconnect(
  o: ConnectLikeOptions,
  cmd: Command,
  onKubernetesClusters: (
    src: KubernetesTarget,
    dests: KubernetesTarget[],
    opts: { mode: ConnectionMode; say: (line: string) => void },
  ) => Promise<unknown>,
  onLab: (opts: {
    context: string | undefined;
    destinationContexts: string[];
    mode: ConnectionMode;
    say: (line: string) => void;
  }) => Promise<unknown>,
): Promise<void> {
  const mode = o.connectionMode as ConnectionMode;
  const context = contextOf(cmd, o.context);
  const destinationContexts = splitList(o.destinationContext);
  if (
    await onKubernetes(context, destinationContexts, (src, dests) =>
      onKubernetesClusters(src, dests, { mode, say }),
    )
  )
    return;
  await onLab({ context, destinationContexts, mode, say });
}

/** Registers the clustermesh command group. */
export function register(program: Command): void {
  const cm = program
    .command('clustermesh')
    .description('Multi-cluster mesh: enable, connect, status (like `cilium clustermesh`)');

  cm.command('enable')
    .description(
      "Deploy the cluster's clustermesh-apiserver (etcd with mutual TLS + syncer + kvstoremesh)",
    )
    .option('--context <name>', 'the cluster context')
    .option(
      '--service-type <type>',
      'how other clusters reach it: NodePort or LoadBalancer',
      'NodePort',
    )
    .option('--no-wait', 'do not wait until the apiserver has exported the cluster state')
    .option(
      '--access-endpoint <urls...>',
      'Kubernetes clusters: https://ADDRESS:PORT other clusters reach its etcd at (default: from the clustermesh-apiserver Service)',
    )
    .action(
      async (
        o: { context?: string; serviceType: string; wait: boolean; accessEndpoint?: string[] },
        cmd: Command,
      ) => {
        const k8s = kubernetesTargetOf(contextOf(cmd, o.context));
        if (k8s) {
          try {
            const st = serviceType(o.serviceType);
            await enableKubernetesMesh(k8s, {
              ...(st ? { serviceType: st } : {}),
              ...(o.accessEndpoint ? { accessEndpoints: splitList(o.accessEndpoint) } : {}),
              say,
            });
          } finally {
            k8s.close();
          }
          return;
        }
        await enableClusterMesh({
          context: contextOf(cmd, o.context),
          serviceType: serviceType(o.serviceType),
          wait: o.wait,
          say,
        });
      },
    );

  cm.command('disable')
    .description('Disconnect the cluster from the mesh and remove its clustermesh-apiserver')
    .option('--context <name>', 'the cluster context')
    .action(async (o: { context?: string }, cmd: Command) => {
      await disableClusterMesh({ context: contextOf(cmd, o.context), say });
    });

  const connectLike = (name: 'connect' | 'disconnect') =>
    cm
      .command(name)
      .description(
        name === 'connect'
          ? 'Connect the cluster with other clusters (enables the mesh on a side where it is not enabled yet)'
          : 'Disconnect the cluster from other clusters',
      )
      .option('--context <name>', 'the source cluster context')
      .option(
        '--destination-context <names...>',
        'the cluster(s) to connect to (comma-separated or repeated)',
      )
      .option(
        '--connection-mode <mode>',
        'bidirectional (both ways), unicast (the source reads the destinations) or mesh (every pair)',
        'bidirectional',
      );

  connectLike('connect')
    .option(
      '--allow-mismatching-ca',
      "connect clusters whose certificates come from different CAs (each trusts the other's CA)",
    )
    .option(
      '--service-type <type>',
      'service type for a side that has to be enabled first',
      'NodePort',
    )
    .action(
      async (
        o: ConnectLikeOptions & { allowMismatchingCa?: boolean; serviceType: string },
        cmd: Command,
      ) => {
        await connectOrDisconnect(o, cmd, connectKubernetesClusters, (common) =>
          connectClusters({
            ...common,
            allowMismatchingCA: o.allowMismatchingCa === true,
            serviceType: serviceType(o.serviceType),
          }),
        );
      },
    );

  connectLike('disconnect').action(async (o: ConnectLikeOptions, cmd: Command) => {
    await connectOrDisconnect(o, cmd, disconnectKubernetesClusters, disconnectClusters);
  });

  cm.command('status')
    .description(
      'Show the mesh: access endpoint, apiserver and etcd health, kvstoremesh, connected clusters',
    )
    .option('--context <name>', 'the cluster context')
    .option('--wait', 'wait until every configured cluster is connected and synced')
    .option('--wait-duration <duration>', 'how long --wait waits', '5m')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      async (
        o: { context?: string; wait?: boolean; waitDuration: string; output: string },
        cmd: Command,
      ) => {
        if (o.output !== 'text' && o.output !== 'json') {
          throw new TendrilError('CLI_BAD_OUTPUT', `output format "${o.output}" is not supported`, {
            hint: 'use -o json or leave it out',
          });
        }
        const ctx = contextOf(cmd, o.context);
        let lastLine = '';
        // the same --wait-duration parsing and loop as `tendril status` (install/collect.ts)
        const report: MeshStatusReport = await pollStatus(
          () => gatherMeshStatus(ctx),
          (r) => r.ready || !r.enabled,
          {
            wait: !!o.wait,
            waitDuration: o.waitDuration,
            onWaiting: (r) => {
              const why = r.problems[0]
                ? `${r.problems[0].component}: ${r.problems[0].cause}`
                : 'nodes connecting';
              const line = `⌛ Waiting for the cluster mesh on ${r.context} to be ready... (${why})`;
              if (o.output === 'text' && line !== lastLine) process.stderr.write(line + '\n');
              lastLine = line;
            },
          },
        );
        if (o.output === 'json') say(JSON.stringify(report, null, 2));
        else process.stdout.write(renderMeshStatus(report));
        if (!report.ready) {
          throw new ExitError(
            1,
            o.wait
              ? `the cluster mesh on ${report.context} is not ready after ${o.waitDuration}`
              : '',
          );
        }
      },
    );
}
