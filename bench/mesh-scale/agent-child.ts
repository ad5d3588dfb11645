/**
 * The mesh-scale benchmark's agent process (forked by index.ts, IPC only,
 * root): Tendril's Agent (src/agent/agent.ts) on a real LinuxDatapath whose
 * BPF maps (ipcache LPM map, socket-LB service/backend maps, policy maps)
 * are pinned under a unique bpffs directory, with the socket-LB programs
 * attached to an empty cgroup of its own, and node routes programmed in a
 * network namespace of its own (so nothing touches the host's routes). The
 * agent's MeshSource (src/agent/mesh-source.ts) follows the local mesh etcd
 * (kvstoremesh's cache) for the remotes the clustermesh config directory
 * names, exactly as `src/agent/main.ts` wires it; the one stand-in is the
 * Kubernetes service source: the local cluster's global Services come from
 * sim.ts and go through the same incremental catalog (ServiceCatalog) and
 * coalesced recompute into `agent.setServices`, as ServiceSource
 * (src/agent/k8s/services.ts) does.
 *
 * Messages in: start, status, stop. Out: ready, status, error.
 */
import { loopDelay, startProfile, stopProfile } from './profile.js';
import { Agent } from '../../src/agent/agent.js';
import { MeshSource } from '../../src/agent/mesh-source.js';
import { MeshStateSource } from '../../src/clustermesh/agent-source.js';
import { LinuxDatapath } from '../../src/datapath/linux/datapath.js';
import { createSocketLB } from '../../src/datapath/linux/lb/index.js';
import { ServiceCatalog } from '../../src/services/catalog-store.js';
import { Coalescer } from '../../src/agent/coalesce.js';
import { createLogger } from '../../src/util/log.js';
import type { ReconcilerStatus } from '../../src/agent/api/types.js';
import {
  LOCAL_CLUSTER,
  LOCAL_NODE_IP,
  LOCAL_POD_CIDR,
  MAX_CONNECTED_CLUSTERS,
  localGlobalServices,
  type ScaleSizes,
} from './sim.js';

export type AgentIn =
  | {
      op: 'start';
      sizes: ScaleSizes;
      localUrl: string;
      configDir: string;
      bpffsDir: string;
      cgroupPath: string;
      /** /run/netns/<name>: where the agent's routes go. */
      netnsPath: string;
      stateDir: string;
      ipcacheMax: number;
    }
  | { op: 'status' }
  | { op: 'profile-start' }
  /** Report every ipcache map write from now on (`written`), or stop reporting. */
  | { op: 'report-writes'; on: boolean }
  | { op: 'profile-stop'; dir: string }
  | { op: 'stop' };

export interface AgentStatusMsg {
  op: 'status';
  ipcache: ReconcilerStatus;
  services: ReconcilerStatus;
  routes: ReconcilerStatus;
  problems: string[];
}

export type AgentOut =
  | { op: 'ready' }
  | AgentStatusMsg
  | { op: 'profile'; file?: string }
  | WrittenMsg
  | { op: 'error'; message: string };

/**
 * ipcache entries written into the BPF map: [prefix, identity, when the map
 * update returned (process.hrtime, ns, as a decimal string: CLOCK_MONOTONIC,
 * the same clock in every process of the machine)].
 */
export interface WrittenMsg {
  op: 'written';
  entries: Array<[string, number, string]>;
  /** [IP, when its mesh event reached the agent (hrtime ns)] for the writes' remote changes. */
  events: Array<[string, string]>;
  /** With report-writes off: the agent's event-loop delay while it was on (ms: p50, p99, max). */
  loopDelayMs?: [number, number, number];
}

const send = (m: AgentOut) => process.send?.(m);
let reportWrites = false;
let written: WrittenMsg['entries'] = [];
const events: WrittenMsg['events'] = [];
/** Sends the writes of this turn of the event loop in one message. */
function reportWrite(prefix: string, identity: number, at: bigint): void {
  if (written.length === 0)
    setImmediate(() => {
      const entries = written;
      written = [];
      send({ op: 'written', entries, events: events.splice(0) });
    });
  written.push([prefix, identity, String(at)]);
}
let agent: Agent | undefined;
let mesh: MeshSource | undefined;
let recomputes: Coalescer | undefined;

async function handle(m: AgentIn): Promise<void> {
  switch (m.op) {
    case 'start': {
      const logger = createLogger({ daemon: 'bench-agent' }, { level: 'warn' });
      const datapath = new LinuxDatapath({
        router: {
          mode: 'native',
          nodeIP: LOCAL_NODE_IP,
          podCIDR: LOCAL_POD_CIDR,
          mtu: 1500,
          netns: m.netnsPath,
        },
        bpffsDir: m.bpffsDir,
        cgroupPath: m.cgroupPath,
        mapSizes: { ipcache: m.ipcacheMax },
        logger,
        socketLB: createSocketLB,
      });
      // the churn's end of the clock: when the agent's ipcache map update returned
      const upsertIPCache = datapath.upsertIPCache.bind(datapath);
      datapath.upsertIPCache = async (e) => {
        await upsertIPCache(e);
        if (reportWrites) reportWrite(e.prefix, e.identity, process.hrtime.bigint());
      };
      // (the agent writes through applyIPCache, in batches: each entry's time is its batch's)
      const applyIPCache = datapath.applyIPCache.bind(datapath);
      datapath.applyIPCache = async (changes) => {
        const failed = await applyIPCache(changes);
        if (reportWrites) {
          const at = process.hrtime.bigint();
          for (const e of changes.upserts)
            if (!failed.has(e.prefix)) reportWrite(e.prefix, e.identity, at);
        }
        return failed;
      };
      agent = new Agent(
        {
          node: 'bench-node',
          nodeIP: LOCAL_NODE_IP,
          podCIDR: LOCAL_POD_CIDR,
          clusterName: LOCAL_CLUSTER.name,
          clusterId: LOCAL_CLUSTER.id,
          maxConnectedClusters: MAX_CONNECTED_CLUSTERS,
          ipcacheMapMax: m.ipcacheMax,
          routingMode: 'native',
          podMtu: 1500,
          lbAlgorithm: 'random',
          stateDir: m.stateDir,
          socketPath: `${m.stateDir}/agent.sock`,
          bpffsDir: m.bpffsDir,
          cgroupPath: m.cgroupPath,
          hubble: { enabled: false, flowBufferSize: 16 },
        },
        {
          datapath: Object.assign(datapath, { listNodeRoutes: () => datapath.router.list() }),
          datapathName: 'linux',
          logger,
        },
      );
      await agent.start({ waitForMesh: true });
      const problems = datapath.problems();
      if (problems.length > 0)
        throw new Error(
          `datapath incomplete: ${problems.map((p) => `${p.component}: ${p.cause}`).join('; ')}`,
        );
      const a = agent;
      // what ServiceSource does with the local Services and the mesh's services
      // (src/agent/k8s/services.ts): an incremental catalog, recomputed coalesced
      const catalog = new ServiceCatalog({
        cluster: LOCAL_CLUSTER.name,
        clusterID: LOCAL_CLUSTER.id,
      });
      for (const svc of localGlobalServices(m.sizes)) catalog.upsertService(svc);
      recomputes = new Coalescer(() => a.setServices(catalog.result().entries));
      const services = recomputes;
      // MeshStateSource reads its etcd options from the directory's files (TLS); the bench's
      // local etcd is plain http on loopback: point it there (the same override tests use).
      const stateSource = new MeshStateSource({
        configDir: m.configDir,
        localCluster: LOCAL_CLUSTER.name,
        localPodCIDRs: () => a.localPodCIDRs(),
        // the directories are read as often as main.ts's agent does (its defaults): at 200 ms
        // the 250 files' stats were ~4 % of the agent's CPU during the sync
        logger,
        storeOptions: async () => ({ endpoints: [m.localUrl] }),
      });
      stateSource.on((ev) => {
        if (reportWrites && ev.type === 'upsert' && ev.kind === 'ip')
          events.push([ev.name, String(process.hrtime.bigint())]);
      });
      mesh = new MeshSource({
        configDir: m.configDir,
        clusterName: LOCAL_CLUSTER.name,
        agent: a,
        setRemoteServices: (remote) => {
          catalog.setRemoteServices(remote);
          services.schedule();
        },
        logger,
        stateSource,
      });
      mesh.start();
      send({ op: 'ready' });
      return;
    }
    case 'status': {
      const s = agent!.status();
      send({
        op: 'status',
        ipcache: agent!.ipcache.status(),
        services: agent!.services.status(),
        routes: agent!.routes.status(),
        problems: s.problems.map((p) => `${p.component}: ${p.cause}`),
      });
      return;
    }
    case 'report-writes':
      reportWrites = m.on;
      send({ op: 'written', entries: [], events: [], ...loopDelay(m.on) });
      return;
    case 'profile-start':
      await startProfile();
      send({ op: 'profile' });
      return;
    case 'profile-stop':
      send({ op: 'profile', file: await stopProfile(m.dir, 'agent') });
      return;
    case 'stop': {
      await mesh?.stop();
      recomputes?.stop();
      await agent?.stop();
      process.exit(0);
    }
  }
}

process.on('message', (m: AgentIn) => {
  handle(m).catch((err: unknown) => send({ op: 'error', message: String(err) }));
});
process.on('disconnect', () => process.exit(0));
