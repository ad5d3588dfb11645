/**
 * The agent's Kubernetes sources: watchers on the API server that feed the
 * Agent (nodes -> routes, CiliumEndpoints -> ipcache, CiliumIdentities ->
 * identity lookups, Pods -> endpoint labels, Services + EndpointSlices ->
 * the service table, Namespaces -> the namespace labels in pod identities)
 * and the CiliumEndpoint publisher. In CRD mode the
 * operator allocates identities; the agent waits for the identity of a pod's
 * label set to appear.
 */
import type { KubernetesObject, V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import { KubeClient } from '../../k8s/client.js';
import type { KubeObject } from '../../k8s/objects.js';
import type { Logger } from '../../util/log.js';
import type { Agent, AgentConfig, AgentDeps, NodeInfo } from '../agent.js';
import type { EndpointInfo } from '../api/types.js';
import { endpointIdentityKey } from '../../identity/pod-labels.js';
import { CILIUM_V2, identityObjectLabels } from '../../identity/crd-backend.js';
import { KindWatcher } from '../../k8s/kind-watcher.js';
import { teardownPodVeth } from '../../datapath/linux/veth.js';
import { ServiceSource } from './services.js';
import type { ClusterService } from '../../services/cluster-service.js';
import { isNotFound, isConflict } from '../../util/errors.js';
import { podNamedPorts } from '../../policy/named-ports.js';
import { startPolicyWatchers } from './policy-source.js';

/** Waits for identities of label sets to appear in the CiliumIdentity cache. */
export class IdentityCache {
  private readonly byLabels = new Map<string, number>();
  private readonly waiters = new Map<string, Array<(id: number) => void>>();

  set(obj: KubernetesObject): void {
    const id = Number(obj.metadata?.name);
    const labels = identityObjectLabels(obj as KubeObject);
    if (!Number.isInteger(id) || !labels) return;
    this.byLabels.set(labels, id);
    for (const w of this.waiters.get(labels) ?? []) w(id);
    this.waiters.delete(labels);
  }

  delete(obj: KubernetesObject): void {
    const labels = identityObjectLabels(obj as KubeObject);
    if (labels && this.byLabels.get(labels) === Number(obj.metadata?.name))
      this.byLabels.delete(labels);
  }

  ids(): number[] {
    return [...this.byLabels.values()];
  }

  /** The identity of a label set; waits up to `timeoutMs`. @throws Error when it does not appear. */
  async waitFor(labels: string, timeoutMs: number): Promise<number> {
    const have = this.byLabels.get(labels);
    if (have !== undefined) return have;
    return new Promise<number>((resolve, reject) => {
      const list = this.waiters.get(labels) ?? [];
      const t = setTimeout(() => {
        const l = this.waiters.get(labels);
        if (l) l.splice(l.indexOf(done), 1);
        reject(new Error(`no CiliumIdentity for ${labels} yet (the operator allocates it)`));
      }, timeoutMs);
      const done = (id: number) => {
        clearTimeout(t);
        resolve(id);
      };
      list.push(done);
      this.waiters.set(labels, list);
    });
  }
}

/** Builds the CiliumEndpoint object of an endpoint. */
export function ciliumEndpointObject(
  ep: EndpointInfo,
  cfg: Pick<AgentConfig, 'nodeIP' | 'node'>,
  podUid?: string,
): KubeObject {
  return {
    apiVersion: CILIUM_V2,
    kind: 'CiliumEndpoint',
    metadata: {
      name: ep.podName,
      namespace: ep.podNamespace,
      labels: { ...ep.labels },
      ...(podUid
        ? {
            ownerReferences: [
              {
                apiVersion: 'v1',
                kind: 'Pod',
                name: ep.podName,
                uid: podUid,
                blockOwnerDeletion: true,
              },
            ],
          }
        : {}),
    },
    status: {
      id: ep.id,
      identity: {
        id: ep.identity,
        labels: Object.entries(ep.labels).map(([k, v]) => `k8s:${k}=${v}`),
      },
      networking: { addressing: [{ ipv4: ep.ip }], node: cfg.nodeIP },
      state: ep.state === 'ready' ? 'ready' : 'waiting-for-identity',
      'external-identifiers': {
        'container-id': ep.containerId,
        'k8s-namespace': ep.podNamespace,
        'k8s-pod-name': ep.podName,
        'pod-name': `${ep.podNamespace}/${ep.podName}`,
      },
    },
  } as KubeObject;
}

function nodeInfo(n: V1Node): NodeInfo | undefined {
  const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
  const name = n.metadata?.name;
  if (!ip || !name) return undefined;
  const podCIDR = n.spec?.podCIDR ?? n.spec?.podCIDRs?.[0];
  return { name, ip, ...(podCIDR ? { podCIDR } : {}) };
}

/** Running sources. */
export interface StartedK8sSources {
  stop(): Promise<void>;
  /** Remote clusters' services for the catalog (from the mesh source). */
  setRemoteServices(services: readonly ClusterService[]): void;
  /** Remote clusters' MCS exports (from the mesh source). */
  setRemoteExports(list: readonly { cluster: string; namespace: string; name: string }[]): void;
}

/** Prepared sources: deps for the Agent, then start() once the agent exists. */
export interface PreparedK8sSources {
  deps: Pick<AgentDeps, 'podLookup' | 'resolveIdentity' | 'publisher' | 'holdPolicy'>;
  syncNames: string[];
  start(agent: Agent): Promise<StartedK8sSources>;
}

function prepare(cfg: AgentConfig, logger: Logger): PreparedK8sSources {
  const log = logger.child({ subsys: 'k8s' });
  const kube = new KubeClient({
    ...cfg.apiAuth,
    server: cfg.apiServerURL ?? '',
    timeoutMs: 10_000,
  });
  // the watchers' lists may be large (10,000s of Services on a busy server): a longer timeout
  const watchClient = new KubeClient({
    ...cfg.apiAuth,
    server: cfg.apiServerURL ?? '',
    timeoutMs: 60_000,
  });
  const identities = new IdentityCache();
  let agentRef: Agent | undefined;
  const problem = (name: string) => (cause: string | undefined) =>
    agentRef?.setProblem(
      `k8s/${name}`,
      cause
        ? {
            cause,
            hint: `is the API server at ${cfg.apiServerURL} up? check the kubeconfig's server and credentials`,
          }
        : undefined,
    );

  const pods = new KindWatcher<V1Pod>({
    name: 'pods',
    client: watchClient,
    path: '/api/v1/pods',
    logger: log,
    onProblem: problem('pods'),
  });
  const nodes = new KindWatcher<V1Node>({
    name: 'nodes',
    client: watchClient,
    path: '/api/v1/nodes',
    logger: log,
    onProblem: problem('nodes'),
  });
  const namespaces = new KindWatcher<V1Namespace>({
    name: 'namespaces',
    client: watchClient,
    path: '/api/v1/namespaces',
    logger: log,
    onProblem: problem('namespaces'),
  });
  let namespacesSynced = false;
  /** A namespace's labels (part of its pods' identities), from the cache or the API server. */
  const namespaceLabels = async (namespace: string): Promise<Record<string, string>> => {
    let ns: V1Namespace | undefined = namespaces.get(namespace);
    if (!ns && !namespacesSynced) {
      const o = await kube.getOrUndefined('v1', 'Namespace', namespace);
      ns = o as unknown as V1Namespace | undefined;
    }
    return { ...(ns?.metadata?.labels ?? {}) };
  };
  const ids = new KindWatcher<KubernetesObject>({
    name: 'ciliumidentities',
    client: watchClient,
    path: '/apis/cilium.io/v2/ciliumidentities',
    logger: log,
    onProblem: problem('ciliumidentities'),
  });
  const ceps = new KindWatcher<KubernetesObject>({
    name: 'ciliumendpoints',
    client: watchClient,
    path: '/apis/cilium.io/v2/ciliumendpoints',
    logger: log,
    onProblem: problem('ciliumendpoints'),
  });
  const services = new ServiceSource({
    client: watchClient,
    logger: log,
    onProblem: problem,
    cluster: cfg.clusterName,
    clusterId: cfg.clusterId,
    algorithm: cfg.lbAlgorithm,
  });

  const podLookup: AgentDeps['podLookup'] = async (namespace, name) => {
    let p: V1Pod | undefined = pods.get(name, namespace);
    if (!p) {
      const o = await kube.getOrUndefined('v1', 'Pod', name, { namespace });
      p = o as unknown as V1Pod | undefined;
    }
    if (!p) return undefined;
    return {
      labels: { ...(p.metadata?.labels ?? {}) },
      ...(p.metadata?.uid ? { uid: p.metadata.uid } : {}),
      ...(p.spec?.serviceAccountName ? { serviceAccount: p.spec.serviceAccountName } : {}),
    };
  };
  const resolveIdentity: AgentDeps['resolveIdentity'] = async (o) =>
    identities.waitFor(
      endpointIdentityKey(
        { ...o, namespaceLabels: await namespaceLabels(o.namespace) },
        cfg.clusterName,
      ),
      3000,
    );
  const publisher: AgentDeps['publisher'] = {
    async upsert(ep) {
      const uid = ep.podUid ?? pods.get(ep.podName, ep.podNamespace)?.metadata?.uid;
      const obj = ciliumEndpointObject(ep, cfg, uid);
      const cur = await kube.getOrUndefined(CILIUM_V2, 'CiliumEndpoint', ep.podName, {
        namespace: ep.podNamespace,
      });
      if (!cur) {
        try {
          await kube.create(obj);
          return;
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
      const fresh =
        cur ??
        (await kube.get(CILIUM_V2, 'CiliumEndpoint', ep.podName, { namespace: ep.podNamespace }));
      await kube.update({
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: fresh.metadata.resourceVersion },
      } as KubeObject);
    },
    async delete(ep) {
      try {
        await kube.delete(CILIUM_V2, 'CiliumEndpoint', ep.podName, { namespace: ep.podNamespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };

  return {
    deps: { podLookup, resolveIdentity, publisher, holdPolicy: true },
    syncNames: ['nodes', 'ciliumendpoints', 'services'],
    async start(agent: Agent) {
      agentRef = agent;
      const pushNodes = () =>
        agent.setNodes(
          'local',
          nodes
            .list()
            .map(nodeInfo)
            .filter((n): n is NodeInfo => !!n),
        );
      nodes.on('add', pushNodes).on('update', pushNodes).on('delete', pushNodes);
      const cepEntries = (o: KubernetesObject) => {
        const st = (o as KubeObject).status ?? {};
        const id = Number(st.identity?.id);
        const ips = ((st.networking?.addressing ?? []) as Array<{ ipv4?: string }>)
          .map((a) => a.ipv4)
          .filter((x): x is string => !!x);
        return { id, ips, hostIP: st.networking?.node as string | undefined };
      };
      const cepIps = new Map<string, string[]>();
      const onCep = (o: KubernetesObject) => {
        const key = `${o.metadata?.namespace}/${o.metadata?.name}`;
        const { id, ips, hostIP } = cepEntries(o);
        for (const old of cepIps.get(key) ?? [])
          if (!ips.includes(old)) agent.updateIPCacheEntry('k8s', `${old}/32`, undefined);
        cepIps.set(key, ips);
        for (const ip of ips) {
          agent.flowMeta.setPeer(ip, {
            namespace: o.metadata?.namespace ?? '',
            podName: o.metadata?.name ?? '',
          });
          agent.updateIPCacheEntry(
            'k8s',
            `${ip}/32`,
            Number.isInteger(id) && id > 0
              ? {
                  prefix: `${ip}/32`,
                  identity: id,
                  ...(hostIP && hostIP !== cfg.nodeIP ? { hostIP } : {}),
                }
              : undefined,
          );
        }
      };
      const offCep = (o: KubernetesObject) => {
        const key = `${o.metadata?.namespace}/${o.metadata?.name}`;
        for (const ip of cepIps.get(key) ?? []) {
          agent.updateIPCacheEntry('k8s', `${ip}/32`, undefined);
          agent.flowMeta.setPeer(ip, undefined);
        }
        cepIps.delete(key);
      };
      ceps.on('add', onCep).on('update', onCep).on('delete', offCep);
      const onId = (o: KubernetesObject) => {
        identities.set(o);
        agent.setIdentityCount(identities.ids());
        const labels = identityObjectLabels(o as KubeObject);
        if (labels) agent.policy.upsertIdentity(Number(o.metadata?.name), labels);
      };
      ids
        .on('add', onId)
        .on('update', onId)
        .on('delete', (o) => {
          identities.delete(o);
          agent.setIdentityCount(identities.ids());
          agent.policy.deleteIdentity(Number(o.metadata?.name));
        });
      agent.policy.namedPortsOf = (ns, name) => podNamedPorts(pods.get(name, ns));
      const policies = startPolicyWatchers({
        client: watchClient,
        policy: agent.policy,
        logger: log,
        onProblem: problem,
      });
      // policy is computed once the policies and the cluster's identities are listed
      void Promise.all([policies.synced, ids.synced]).then(() => agent.policy.release());
      pods.on('update', (p) => {
        if (p.metadata?.namespace && p.metadata.name)
          agent.endpoints.refreshPod(p.metadata.namespace, p.metadata.name);
      });
      const nsSeen = new Map<string, string>();
      const onNamespace = (ns: V1Namespace) => {
        const name = ns.metadata?.name;
        const canon = JSON.stringify(
          Object.entries(ns.metadata?.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)),
        );
        if (!name || nsSeen.get(name) === canon) return;
        nsSeen.set(name, canon);
        agent.endpoints.refreshNamespace(name);
      };
      namespaces
        .on('add', onNamespace)
        .on('update', onNamespace)
        .on('delete', (ns) => nsSeen.delete(ns.metadata?.name ?? ''));
      void namespaces.synced.then(() => {
        namespacesSynced = true;
      });
      services.onChange((entries) => {
        agent.flowMeta.setServiceNames(services.catalogServices());
        agent.setServices(entries);
      });
      services.onIssues((issues) => agent.setServiceIssues(issues));
      for (const w of [pods, namespaces, nodes, ids, ceps]) void w.start();
      void services.start();
      void nodes.synced.then(() => {
        pushNodes();
        agent.sourceSynced('nodes');
      });
      void ceps.synced.then(() => agent.sourceSynced('ciliumendpoints'));
      void services.synced.then(() => agent.sourceSynced('services'));
      // addresses of pods deleted without a CNI DEL (checked once the pod cache is complete)
      const gc = setInterval(() => {
        void pods.synced.then(() =>
          agent
            .collectGarbage((ns, name) => pods.get(name, ns) !== undefined, 60_000, teardownPodVeth)
            .catch((err) => log.warn('address GC failed', { error: err })),
        );
      }, 30_000);
      return {
        stop: async () => {
          clearInterval(gc);
          // stop first (no handler runs afterwards), then close the client so a list in flight ends
          const stopped = Promise.all([
            ...[pods, namespaces, nodes, ids, ceps].map((w) => w.stop()),
            policies.stop(),
            services.stop(),
          ]);
          watchClient.close();
          kube.close();
          await stopped;
        },
        setRemoteServices: (list) => services.setRemote(list),
        setRemoteExports: (list) => services.setRemoteExports(list),
      };
    },
  };
}

/** Entry point used by the agent daemon. */
export const startK8sSources = { prepare };
