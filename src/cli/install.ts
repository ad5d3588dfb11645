/**
 * `tendril install` and `tendril uninstall`: put Tendril (agents, operator,
 * cluster DNS, CNI plugin) into a lab cluster, or take it out.
 */
import type { Command } from 'commander';
import { parseDuration } from '../util/duration.js';
import { install, uninstall } from '../install/install.js';
import { enableClusterMesh } from '../install/clustermesh/enable.js';
import { readMeshConfig } from '../clustermesh/mesh-files.js';
import { dryRunInstall } from '../install/kubernetes/dry-run.js';

const collect = (v: string, prev: string[]) => [...prev, v];
const out = (line: string) => process.stdout.write(line + '\n');

export function register(program: Command): void {
  program
    .command('install')
    .description('install Tendril (agents, operator, cluster DNS, CNI plugin) into a lab cluster')
    .requiredOption(
      '--cluster-name <name>',
      'the cluster\'s name in the mesh (<=32 chars: a-z, 0-9, "-")',
    )
    .option('--cluster-id <id>', 'cluster ID 1-255 (default: one no other lab cluster uses)')
    .option(
      '--set <key=value>',
      'a setting (repeatable): routing-mode, mtu, lb-algorithm, identity-gc-interval, ...',
      collect,
      [],
    )
    .option(
      '--routing-mode <mode>',
      'native (kernel routes) or tunnel (VXLAN); same as --set routing-mode=',
    )
    .option('--enable-identity-allocation-mode <mode>', 'CRD (CiliumIdentity objects)')
    .option(
      '--policy-enforcement <mode>',
      'default, always or never; same as --set policy-enforcement=',
    )
    .option('--enable-l7-proxy', 'accepted for compatibility (reported as not applicable)')
    .option(
      '--enable-cross-cluster-ipvs',
      'accepted for compatibility (eBPF socket load balancing is always on)',
    )
    .option('--force', 'allow changing the cluster ID of an existing install')
    .option('--no-wait', 'do not wait for the agents to come up')
    .option(
      '--wait-duration <duration>',
      'how long to wait for the agents (e.g. 90s, 5m; a bare number is seconds)',
      '90s',
    )
    .option('--dry-run', 'print the objects for a real Kubernetes cluster instead of installing')
    .option('-o, --output <format>', 'with --dry-run: yaml (default) or json')
    .option('--image <image>', 'with --dry-run: the Tendril image (docs/kubernetes.md)')
    .option('--pod-cidr <cidr>', 'with --dry-run: the cluster pod CIDR (default 10.244.0.0/16)')
    .option('--service-cidr <cidr>', 'with --dry-run: the service CIDR (default 10.96.0.0/12)')
    .option(
      '--k8s-api-server <url>',
      'with --dry-run: the API server the daemons use (default https://kubernetes.default.svc:443)',
    )
    .option(
      '--clustermesh-service-type <type>',
      'with --dry-run: also render the clustermesh-apiserver, exposed as NodePort, LoadBalancer or ClusterIP',
    )
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const context = (cmd.optsWithGlobals() as { context?: string }).context;
      if (opts.dryRun || opts.output !== undefined) {
        const str = (k: string) => (opts[k] === undefined ? undefined : String(opts[k]));
        process.stdout.write(
          dryRunInstall({
            clusterName: String(opts.clusterName),
            clusterId: str('clusterId'),
            set: [
              ...(opts.set as string[]),
              ...(opts.routingMode ? [`routing-mode=${String(opts.routingMode)}`] : []),
              ...(opts.enableIdentityAllocationMode
                ? [`identity-allocation-mode=${String(opts.enableIdentityAllocationMode)}`]
                : []),
            ],
            image: str('image'),
            podCIDR: str('podCidr'),
            serviceCIDR: str('serviceCidr'),
            apiServer: str('k8sApiServer'),
            output: str('output'),
            dryRun: Boolean(opts.dryRun),
            ...(opts.clustermeshServiceType
              ? { clustermesh: { serviceType: String(opts.clustermeshServiceType) } }
              : {}),
          }),
        );
        return; // a dry run touches no cluster
      }
      const res = await install({
        ...(context ? { context } : {}),
        clusterName: String(opts.clusterName),
        ...(opts.clusterId !== undefined ? { clusterId: String(opts.clusterId) } : {}),
        set: [
          ...(opts.set as string[]),
          ...(opts.policyEnforcement
            ? [`policy-enforcement=${String(opts.policyEnforcement)}`]
            : []),
        ],
        ...(opts.routingMode ? { routingMode: String(opts.routingMode) } : {}),
        ...(opts.enableIdentityAllocationMode
          ? { identityAllocationMode: String(opts.enableIdentityAllocationMode) }
          : {}),
        enableL7Proxy: Boolean(opts.enableL7Proxy),
        enableCrossClusterIpvs: Boolean(opts.enableCrossClusterIpvs),
        force: Boolean(opts.force),
        wait: opts.wait !== false,
        timeoutMs: parseDuration(String(opts.waitDuration), { what: '--wait-duration' }),
        progress: (l) => out(`🔮 ${l}`),
      });
      for (const n of res.notes) out(`ℹ️  ${n}`);
      if (res.changed)
        out(
          `✅ Tendril was successfully installed! Cluster name: ${res.state.clusterName}, cluster ID: ${res.state.clusterId}. Run \`tendril status${context ? ` --context ${context}` : ''} --wait\`.`,
        );
      // The clustermesh-apiserver exports the cluster under the ID it was enabled
      // with: after a forced ID change, re-enable it so the mesh (and every
      // connected cluster's record of this one) moves to the new ID.
      const mesh = readMeshConfig(res.state.labCluster);
      if (mesh && mesh.clusterId !== res.state.clusterId) {
        out(
          `ℹ️  Cluster mesh is enabled with cluster ID ${mesh.clusterId}: re-enabling it with cluster ID ${res.state.clusterId}`,
        );
        await enableClusterMesh({ ...(context ? { context } : {}), say: out });
      }
    });

  program
    .command('uninstall')
    .description(
      'remove Tendril from a lab cluster (daemons, CNI config, pinned eBPF programs and maps, routes, kube-dns)',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const context = (cmd.optsWithGlobals() as { context?: string }).context;
      await uninstall({ ...(context ? { context } : {}), progress: (l) => out(`🔥 ${l}`) });
    });
}
