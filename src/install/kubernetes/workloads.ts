/**
 * The daemons' workloads on a real cluster: the config maps, the agent
 * DaemonSet (with the init container that installs the CNI plugin on the
 * node), the operator and DNS Deployments, and the clustermesh-apiserver
 * Deployment with etcd as a sidecar, its Service and the Secrets it mounts.
 * Pure functions of {@link ManifestOptions}.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { KubeObject } from '../../k8s/objects.js';
import { TendrilError } from '../../util/errors.js';
import { etcdArgs } from '../../kvstore/etcd-server.js';
import { podMtu } from '../../datapath/linux/routes.js';
import type { RoutingMode } from '../../datapath/types.js';
import { configMapData, type ManifestOptions } from './options.js';
import {
  IMAGE_ROOT,
  MESH_SECRETS,
  NAMES,
  PATHS,
  PORTS,
  SECRET_NAMES,
  daemonCommand,
} from './names.js';

/** The CNI plugin's executable name and its network config file (as in the lab). */
export const CNI_PLUGIN = 'tendril-cni';
export const CNI_CONFLIST = '05-tendril.conflist';
/** The agent's V8 young generation (MiB), as the lab runs it (docs/agent.md). */
export const AGENT_SEMI_SPACE_MIB = 2;

/** Where every daemon finds the kubeconfig of {@link kubeconfigMap}. */
export const KUBECONFIG_PATH = `${PATHS.kubeconfigDir}/kubeconfig`;

/**
 * The agent's command-line flags: settings (including its node-local paths)
 * from the config dir, the API server from the kubeconfig, the mesh from the
 * clustermesh config dir. Its node's name comes from $K8S_NODE_NAME.
 */
export const AGENT_ARGS: readonly string[] = [
  '--config-dir',
  PATHS.configDir,
  '--kubeconfig',
  KUBECONFIG_PATH,
  '--clustermesh-config',
  PATHS.clustermeshConfig,
];

function labels(name: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/part-of': 'tendril',
    'k8s-app': name,
  };
}
const selector = (name: string) => ({ matchLabels: { 'k8s-app': name } });

/** sha256 of the config, as a pod template annotation: a changed config rolls the pods. */
function configHash(o: ManifestOptions): string {
  return createHash('sha256')
    .update(JSON.stringify(configMapData(o)))
    .digest('hex')
    .slice(0, 16);
}

function container(
  o: ManifestOptions,
  name: string,
  command: string[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    image: o.image,
    imagePullPolicy: o.imagePullPolicy,
    command,
    workingDir: IMAGE_ROOT,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    ...extra,
  };
}

const nodeNameEnv = {
  name: 'K8S_NODE_NAME',
  valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } },
};
const configVolume = { name: 'tendril-config', configMap: { name: NAMES.config } };
const configMount = { name: 'tendril-config', mountPath: PATHS.configDir, readOnly: true };
const kubeconfigVolume = { name: 'kubeconfig', configMap: { name: NAMES.kubeconfig } };
const kubeconfigMount = { name: 'kubeconfig', mountPath: PATHS.kubeconfigDir, readOnly: true };
// the local clustermesh etcd's config (kvstoremesh): absent until `clustermesh enable`
const meshConfigVolume = {
  name: 'clustermesh',
  secret: { secretName: SECRET_NAMES.agentMesh, optional: true, defaultMode: 0o400 },
};
const meshConfigMount = { name: 'clustermesh', mountPath: PATHS.clustermeshConfig, readOnly: true };
const hostPath = (name: string, path: string, type: string) => ({
  name,
  hostPath: { path, type },
});

/** The `tendril-config` ConfigMap: one key per setting, the daemons' `--config-dir`. */
export function configMap(o: ManifestOptions): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: NAMES.config, namespace: o.namespace, labels: labels(NAMES.config) },
    data: configMapData(o),
  } as KubeObject;
}

/**
 * The daemons' kubeconfig: the API server, its CA and the token of the pod's
 * own service account (each daemon authenticates as itself), in the fields
 * `kubectl` reads.
 */
export function kubeconfig(o: Pick<ManifestOptions, 'apiServer'>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'kubernetes',
        cluster: { server: o.apiServer, 'certificate-authority': `${SA_DIR}/ca.crt` },
      },
    ],
    users: [{ name: 'service-account', user: { tokenFile: `${SA_DIR}/token` } }],
    contexts: [{ name: 'tendril', context: { cluster: 'kubernetes', user: 'service-account' } }],
    'current-context': 'tendril',
  });
}
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The `tendril-kubeconfig` ConfigMap every daemon mounts at PATHS.kubeconfigDir. */
export function kubeconfigMap(o: ManifestOptions): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: NAMES.kubeconfig, namespace: o.namespace, labels: labels(NAMES.kubeconfig) },
    data: { kubeconfig: kubeconfig(o) },
  } as KubeObject;
}

/**
 * The CNI network config list: the plugin, the agent's socket, the pods' MTU
 * (from routing-mode and mtu) and the plugin's log. On Kubernetes the
 * install-cni init container puts it in /etc/cni/net.d with the node paths of
 * PATHS; the lab writes the same list with its per-node paths.
 */
export function cniConflist(
  o: Pick<ManifestOptions, 'settings'>,
  paths: { agentSocket: string; logFile: string } = {
    agentSocket: PATHS.agentSocket,
    logFile: PATHS.cniLog,
  },
): Record<string, unknown> {
  const mode = (o.settings['routing-mode'] ?? 'native') as RoutingMode;
  return {
    cniVersion: '1.0.0',
    name: 'tendril',
    plugins: [
      {
        type: CNI_PLUGIN,
        agentSocket: paths.agentSocket,
        mtu: podMtu(mode, Number(o.settings['mtu'] ?? 1500)),
        logFile: paths.logFile,
      },
    ],
  };
}

/** The `tendril-cni-config` ConfigMap holding the CNI network config list. */
export function cniConfigMap(o: ManifestOptions): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: NAMES.cniConfig, namespace: o.namespace, labels: labels(NAMES.cniConfig) },
    data: { [CNI_CONFLIST]: JSON.stringify(cniConflist(o), null, 2) + '\n' },
  } as KubeObject;
}

/** Where the install-cni script reads and writes (the container's view; tests point them elsewhere). */
export interface InstallCniPaths {
  /** The image's Tendril tree. */
  imageRoot: string;
  /** The node's /opt as the container sees it. */
  hostOpt: string;
  hostCniBin: string;
  hostCniConf: string;
  /** Where the tendril-cni-config ConfigMap is mounted. */
  cniConfigDir: string;
  /** The node's view of `${hostOpt}/tendril` (what the wrapper on the node executes). */
  nodeRuntime: string;
}

const INSTALL_CNI_PATHS: InstallCniPaths = {
  imageRoot: IMAGE_ROOT,
  hostOpt: PATHS.hostOpt,
  hostCniBin: PATHS.hostCniBin,
  hostCniConf: PATHS.hostCniConf,
  cniConfigDir: PATHS.cniConfigDir,
  nodeRuntime: PATHS.nodeRuntime,
};

/**
 * The install-cni init container's script: copies the image's Tendril tree and
 * node binary to the node's /opt/tendril (the CNI plugin runs on the node, not
 * in a container), writes the plugin's wrapper into /opt/cni/bin and the
 * network config into /etc/cni/net.d, each by rename so the kubelet never sees
 * half a file. Running it again replaces all three (an upgrade).
 */
export function installCniScript(p: InstallCniPaths = INSTALL_CNI_PATHS): string {
  const rt = p.nodeRuntime;
  const host = `${p.hostOpt}/tendril`;
  const plugin = `#!/bin/sh\nexec ${rt}/node --import file://${rt}/node_modules/tsx/dist/loader.mjs ${rt}/src/agent/cni/main.ts "$@"\n`;
  return [
    'set -eu',
    `rm -rf ${host}.new ${host}.old`,
    `mkdir -p ${host}.new ${p.hostCniBin} ${p.hostCniConf}`,
    `cp -a ${p.imageRoot}/. ${host}.new/`,
    `cp "$(command -v node)" ${host}.new/node`,
    `if [ -e ${host} ]; then mv ${host} ${host}.old; fi`,
    `mv ${host}.new ${host}`,
    `rm -rf ${host}.old`,
    `printf '%s' '${plugin}' > ${p.hostCniBin}/${CNI_PLUGIN}.tmp`,
    `chmod 755 ${p.hostCniBin}/${CNI_PLUGIN}.tmp`,
    `mv ${p.hostCniBin}/${CNI_PLUGIN}.tmp ${p.hostCniBin}/${CNI_PLUGIN}`,
    `cp ${p.cniConfigDir}/${CNI_CONFLIST} ${p.hostCniConf}/.${CNI_CONFLIST}.tmp`,
    `mv ${p.hostCniConf}/.${CNI_CONFLIST}.tmp ${p.hostCniConf}/${CNI_CONFLIST}`,
  ].join('\n');
}

/** The agent DaemonSet: one privileged, host-network agent per node. */
export function agentDaemonSet(o: ManifestOptions): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: NAMES.agent, namespace: o.namespace, labels: labels(NAMES.agent) },
    spec: {
      selector: selector(NAMES.agent),
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: {
          labels: labels(NAMES.agent),
          annotations: { 'tendril.io/config-hash': configHash(o) },
        },
        spec: {
          serviceAccountName: NAMES.agent,
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          priorityClassName: 'system-node-critical',
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 10,
          tolerations: [{ operator: 'Exists' }],
          initContainers: [
            container(o, 'install-cni', ['/bin/sh', '-c', installCniScript()], {
              securityContext: { privileged: true },
              volumeMounts: [
                { name: 'cni-config', mountPath: PATHS.cniConfigDir, readOnly: true },
                { name: 'host-cni-bin', mountPath: PATHS.hostCniBin },
                { name: 'host-cni-conf', mountPath: PATHS.hostCniConf },
                { name: 'host-opt', mountPath: PATHS.hostOpt },
              ],
            }),
          ],
          containers: [
            container(
              o,
              'agent',
              daemonCommand(
                'src/agent/main.ts',
                [...AGENT_ARGS],
                [`--max-semi-space-size=${AGENT_SEMI_SPACE_MIB}`],
              ),
              {
                env: [nodeNameEnv],
                securityContext: { privileged: true },
                volumeMounts: [
                  configMount,
                  kubeconfigMount,
                  { name: 'run', mountPath: PATHS.runDir },
                  { name: 'bpf-maps', mountPath: PATHS.bpffs, mountPropagation: 'Bidirectional' },
                  { name: 'cgroup', mountPath: PATHS.cgroupRoot },
                  { name: 'netns', mountPath: PATHS.netns, mountPropagation: 'HostToContainer' },
                  { name: 'lib-modules', mountPath: '/lib/modules', readOnly: true },
                  meshConfigMount,
                ],
              },
            ),
          ],
          volumes: [
            configVolume,
            kubeconfigVolume,
            { name: 'cni-config', configMap: { name: NAMES.cniConfig } },
            hostPath('run', PATHS.runDir, 'DirectoryOrCreate'),
            hostPath('bpf-maps', PATHS.bpffs, 'DirectoryOrCreate'),
            hostPath('cgroup', PATHS.cgroupRoot, 'Directory'),
            hostPath('netns', PATHS.netns, 'DirectoryOrCreate'),
            hostPath('lib-modules', '/lib/modules', 'Directory'),
            hostPath('host-cni-bin', '/opt/cni/bin', 'DirectoryOrCreate'),
            hostPath('host-cni-conf', '/etc/cni/net.d', 'DirectoryOrCreate'),
            hostPath('host-opt', '/opt', 'Directory'),
            meshConfigVolume,
          ],
        },
      },
    },
  } as KubeObject;
}

/** The operator Deployment: one replica (no leader election), host network so it runs before pods have one. */
export function operatorDeployment(o: ManifestOptions): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAMES.operator, namespace: o.namespace, labels: labels(NAMES.operator) },
    spec: {
      replicas: 1,
      // two operators at once would both allocate identities and pod CIDRs
      strategy: { type: 'Recreate' },
      selector: selector(NAMES.operator),
      template: {
        metadata: {
          labels: labels(NAMES.operator),
          annotations: { 'tendril.io/config-hash': configHash(o) },
        },
        spec: {
          serviceAccountName: NAMES.operator,
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          priorityClassName: 'system-cluster-critical',
          tolerations: [{ operator: 'Exists' }],
          containers: [
            container(
              o,
              'operator',
              daemonCommand('src/operator/main.ts', [
                '--config-dir',
                PATHS.configDir,
                '--kubeconfig',
                KUBECONFIG_PATH,
                '--clustermesh-config',
                PATHS.clustermeshConfig,
              ]),
              { volumeMounts: [configMount, kubeconfigMount, meshConfigMount] },
            ),
          ],
          volumes: [configVolume, kubeconfigVolume, meshConfigVolume],
        },
      },
    },
  } as KubeObject;
}

/** The cluster DNS for clusterset.local (and cluster.local): a Deployment and its Service. */
export function dnsObjects(o: ManifestOptions): KubeObject[] {
  const deploy = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAMES.dns, namespace: o.namespace, labels: labels(NAMES.dns) },
    spec: {
      replicas: 1,
      selector: selector(NAMES.dns),
      template: {
        metadata: {
          labels: labels(NAMES.dns),
          annotations: { 'tendril.io/config-hash': configHash(o) },
        },
        spec: {
          serviceAccountName: NAMES.dns,
          priorityClassName: 'system-cluster-critical',
          containers: [
            container(
              o,
              'dns',
              daemonCommand('src/dns/main.ts', [
                '--listen',
                `0.0.0.0:${PORTS.dns}`,
                '--kubeconfig',
                KUBECONFIG_PATH,
                ...(o.settings['remote-service-import'] === 'false'
                  ? ['--no-service-imports']
                  : []),
              ]),
              {
                ports: [
                  { name: 'dns', containerPort: PORTS.dns, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: PORTS.dns, protocol: 'TCP' },
                ],
                securityContext: {
                  capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
                },
                volumeMounts: [kubeconfigMount],
              },
            ),
          ],
          volumes: [kubeconfigVolume],
        },
      },
    },
  };
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: NAMES.dns, namespace: o.namespace, labels: labels(NAMES.dns) },
    spec: {
      type: 'ClusterIP',
      ...(o.dnsServiceIP ? { clusterIP: o.dnsServiceIP } : {}),
      selector: { 'k8s-app': NAMES.dns },
      ports: [
        { name: 'dns', port: PORTS.dns, targetPort: PORTS.dns, protocol: 'UDP' },
        { name: 'dns-tcp', port: PORTS.dns, targetPort: PORTS.dns, protocol: 'TCP' },
      ],
    },
  };
  return [deploy, svc] as KubeObject[];
}

// etcdArgs checks that its URLs parse; the pod IP is only known to the kubelet, which
// expands $(POD_IP) in the command. Render with a documentation address, then swap it in.
const POD_IP_PLACEHOLDER = '192.0.2.1';

/** The mesh etcd's argv (Debian's etcd, mutual TLS on every client URL, metrics on 127.0.0.1). */
export function meshEtcdCommand(): string[] {
  return etcdArgs({
    name: 'clustermesh',
    dataDir: PATHS.etcdData,
    clientUrls: [
      `https://127.0.0.1:${PORTS.etcdClient}`,
      `https://${POD_IP_PLACEHOLDER}:${PORTS.etcdClient}`,
    ],
    peerPort: PORTS.etcdPeer,
    tls: {
      caFile: `${PATHS.etcdSecrets}/ca.crt`,
      certFile: `${PATHS.etcdSecrets}/tls.crt`,
      keyFile: `${PATHS.etcdSecrets}/tls.key`,
      clientCertAuth: true,
    },
    extraArgs: [
      `--listen-metrics-urls=http://127.0.0.1:${PORTS.etcdMetrics}`,
      '--auto-compaction-mode=revision',
      '--auto-compaction-retention=10000',
    ],
  }).map((a) => a.split(POD_IP_PLACEHOLDER).join('$(POD_IP)'));
}

/** The clustermesh-apiserver's etcd client config for its own etcd (Cilium's etcd-config shape). */
export function meshEtcdClientConfig(): string {
  return [
    'endpoints:',
    `- https://127.0.0.1:${PORTS.etcdClient}`,
    `trusted-ca-file: ${PATHS.adminCert}/ca.crt`,
    `cert-file: ${PATHS.adminCert}/tls.crt`,
    `key-file: ${PATHS.adminCert}/tls.key`,
    '',
  ].join('\n');
}

/**
 * The clustermesh-apiserver: its etcd client config, a Deployment with etcd as
 * a sidecar container, and the Service that exposes etcd to the other clusters.
 * @throws Error when the options have no `clustermesh` part.
 */
export function clusterMeshObjects(o: ManifestOptions): KubeObject[] {
  const mesh = o.clustermesh;
  if (!mesh) throw new Error('clusterMeshObjects: options.clustermesh is not set');
  const name = NAMES.meshApiserver;
  const cm = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: NAMES.meshEtcdConfig, namespace: o.namespace, labels: labels(name) },
    data: { 'etcd-config.yaml': meshEtcdClientConfig() },
  };
  const deploy = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: o.namespace, labels: labels(name) },
    spec: {
      replicas: 1,
      // one etcd member with its data in an emptyDir: never two at once
      strategy: { type: 'Recreate' },
      selector: selector(name),
      template: {
        metadata: {
          labels: labels(name),
          annotations: { 'tendril.io/config-hash': configHash(o) },
        },
        spec: {
          serviceAccountName: name,
          priorityClassName: 'system-cluster-critical',
          containers: [
            container(o, 'etcd', meshEtcdCommand(), {
              env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
              ports: [{ name: 'etcd', containerPort: PORTS.etcdClient, protocol: 'TCP' }],
              volumeMounts: [
                { name: 'etcd-data', mountPath: PATHS.etcdData },
                { name: 'etcd-server-secrets', mountPath: PATHS.etcdSecrets, readOnly: true },
              ],
            }),
            container(
              o,
              'apiserver',
              daemonCommand('src/clustermesh/apiserver/main.ts', [
                '--config-dir',
                PATHS.configDir,
                '--kubeconfig',
                KUBECONFIG_PATH,
                '--etcd-config',
                `${PATHS.etcdConfig}/etcd-config.yaml`,
                '--clustermesh-config',
                PATHS.clustermeshConfig,
                '--cluster-users-config',
                `${PATHS.remoteUsers}/users.yaml`,
              ]),
              {
                volumeMounts: [
                  configMount,
                  kubeconfigMount,
                  { name: 'etcd-config', mountPath: PATHS.etcdConfig, readOnly: true },
                  { name: 'etcd-admin-client', mountPath: PATHS.adminCert, readOnly: true },
                  { name: 'kvstoremesh', mountPath: PATHS.clustermeshConfig, readOnly: true },
                  { name: 'remote-users', mountPath: PATHS.remoteUsers, readOnly: true },
                ],
              },
            ),
          ],
          volumes: [
            configVolume,
            kubeconfigVolume,
            // in memory, as Cilium runs it: a cache rebuilt from the API (docs/decisions.md)
            { name: 'etcd-data', emptyDir: { medium: 'Memory' } },
            { name: 'etcd-config', configMap: { name: NAMES.meshEtcdConfig } },
            {
              name: 'etcd-server-secrets',
              secret: { secretName: SECRET_NAMES.server, defaultMode: 0o400 },
            },
            {
              name: 'etcd-admin-client',
              secret: { secretName: SECRET_NAMES.admin, defaultMode: 0o400 },
            },
            // remote clusters: empty until `clustermesh connect`
            {
              name: 'kvstoremesh',
              secret: { secretName: SECRET_NAMES.kvstoremesh, optional: true, defaultMode: 0o400 },
            },
            // remote clusters allowed to read this etcd: none until `clustermesh connect`
            { name: 'remote-users', configMap: { name: NAMES.meshRemoteUsers, optional: true } },
          ],
        },
      },
    },
  };
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.namespace, labels: labels(name) },
    spec: {
      type: mesh.serviceType,
      selector: { 'k8s-app': name },
      ports: [
        {
          name: 'etcd',
          port: PORTS.etcdClient,
          targetPort: PORTS.etcdClient,
          protocol: 'TCP',
          ...(mesh.serviceType === 'NodePort' && mesh.nodePort ? { nodePort: mesh.nodePort } : {}),
        },
      ],
    },
  };
  return [cm, deploy, svc] as KubeObject[];
}

/**
 * One of the mesh Secrets with its files (PEMs and etcd configs made by
 * `clustermesh enable`/`connect` from the mesh CA). The install manifests
 * carry no Secret: the data exists only once the CA does.
 * @throws TendrilError MANIFEST_SECRET_KEYS when a required key is missing or the name is unknown.
 */
export function meshSecret(
  o: Pick<ManifestOptions, 'namespace'>,
  name: string,
  files: Record<string, string>,
): KubeObject {
  const shape = MESH_SECRETS.find((s) => s.name === name);
  if (!shape)
    throw secretError(
      `unknown mesh Secret "${name}"`,
      `one of ${MESH_SECRETS.map((s) => s.name).join(', ')}`,
    );
  const missing = shape.keys.filter((k) => files[k] === undefined);
  if (missing.length > 0)
    throw secretError(
      `mesh Secret ${name} needs ${missing.join(', ')}`,
      `give every key of ${name}: ${shape.keys.join(', ')}`,
    );
  const data: Record<string, string> = {};
  for (const k of Object.keys(files).sort())
    data[k] = Buffer.from(files[k]!, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: o.namespace, labels: labels(name) },
    type: shape.type,
    data,
  } as KubeObject;
}

function secretError(message: string, hint: string): TendrilError {
  return new TendrilError('MANIFEST_SECRET_KEYS', message, { hint });
}
