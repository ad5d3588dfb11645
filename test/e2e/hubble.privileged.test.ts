/**
 * Hubble end to end in one lab cluster of two nodes: after install every
 * agent serves the Observer API on its node socket and on <node ip>:4244
 * with mutual TLS (a certificate from the cluster CA, issued by install), and
 * the cluster's relay (a lab daemon) reaches all of them over mutual TLS; a
 * client certificate of another CA is refused: `tendril hubble status` counts every
 * node connected, GetNodes through the relay lists every node, `tendril
 * status` says `Hubble: OK`, and `tendril hubble observe --last 10 -o json`
 * answers after some traffic; the second test finds that traffic as
 * FORWARDED flows to the server pod (the datapath's flow events); the third
 * reaches the server by its Service's DNS name: the flows carry that name
 * (the agent captured the lab DNS's answer) and the TRANSLATED flow names the
 * client pod (from the cgroup id the socket LB reports).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { privilegedTest } from '../helpers/privileged.js';
import {
  ROOT,
  cli,
  cliOk,
  createInstalledCluster,
  podRunning,
  reachFromLabelledPod,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import { ECHO_SERVER_POD } from './pods.js';

const lab = useUniqueLab('hub');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');
const { ObserverClient } = await import('../../src/observe/client.js');
const { hubbleRelaySocketPath, hubbleRelayTLSPaths, hubbleNodeTLSPaths } =
  await import('../../src/install/hubble.js');
const { createCA, issueClientCert, verifyCertificate } = await import('../../src/util/certs.js');
const { readFileSync } = await import('node:fs');

/** ServerStatus of ADDRESS over mutual TLS, asked from inside NETNS (test/e2e/hubble-tls-probe.ts). */
function probeInNetns(
  netns: string,
  address: string,
  files: { ca: string; cert: string; key: string },
): { ok: boolean; error?: string } {
  const out = execFileSync(
    'nsenter',
    [
      `--net=/run/netns/${netns}`,
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'test/e2e/hubble-tls-probe.ts'),
      address,
      files.ca,
      files.cert,
      files.key,
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; error?: string };
}

const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: server
spec:
  selector: {app: server}
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
`;

let observed: string | undefined;
let created = false;

after(async () => {
  if (created) await teardownLab(lab);
});

privilegedTest(
  'privileged: every node is present through the relay; observe answers after traffic',
  async () => {
    created = true;
    await createInstalledCluster('cluster1', 1, 2);
    const cluster = loadCluster('cluster1');
    const names = cluster.nodes.map((n) => n.name).sort();
    assert.ok(names.length >= 2);

    const st = await until(
      'the relay counts every node connected',
      async () => {
        const r = await cli(['--context', 'lab-cluster1', 'hubble', 'status', '-o', 'json']);
        if (r.status !== 0) return undefined;
        const s = JSON.parse(r.out) as {
          numConnectedNodes?: number;
          maxFlows: number;
          unavailableNodes: string[];
        };
        return s.numConnectedNodes === names.length ? s : undefined;
      },
      90_000,
      1000,
    );
    assert.deepEqual(st.unavailableNodes, []);
    assert.equal(st.maxFlows, 4095 * names.length, 'every agent keeps a ring of the default 4095');

    const client = new ObserverClient({ address: `unix:${hubbleRelaySocketPath('cluster1')}` });
    try {
      const nodes = await client.getNodes();
      assert.deepEqual(nodes.map((n) => n.name).sort(), names);
      assert.ok(nodes.every((n) => n.state === 'NODE_CONNECTED' && n.maxFlows === 4095));
      assert.ok(
        nodes.every((n) => n.tls?.enabled && /:4244$/.test(n.address ?? '')),
        `the relay reaches every node on :4244 with TLS: ${JSON.stringify(nodes)}`,
      );
    } finally {
      client.close();
    }

    // mutual TLS on :4244: the cluster CA's certificates open it, another CA's do not
    const cp = cluster.nodes.find((n) => n.role === 'control-plane')!;
    const relayFiles = hubbleRelayTLSPaths('cluster1');
    for (const n of cluster.nodes) {
      const nodeFiles = hubbleNodeTLSPaths('cluster1', n.name);
      const info = verifyCertificate(
        readFileSync(nodeFiles.cert, 'utf8'),
        readFileSync(nodeFiles.ca, 'utf8'),
        { purpose: 'server', host: n.ip },
      );
      assert.match(info.commonName, new RegExp(`^${n.name}\\.cluster1\\.hubble-grpc`));
      const ok = probeInNetns(cp.netns, `${n.ip}:4244`, relayFiles);
      assert.equal(ok.ok, true, `the relay's certificate opens ${n.name}:4244: ${ok.error}`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'hubble-stranger-'));
    try {
      const other = await createCA({ commonName: 'not the cluster CA' });
      const kp = await issueClientCert(other, 'hubble-relay');
      const stranger = { ca: relayFiles.ca, cert: join(dir, 'c.crt'), key: join(dir, 'c.key') };
      writeFileSync(stranger.cert, kp.certPEM);
      writeFileSync(stranger.key, kp.keyPEM);
      const worker = cluster.nodes.find((n) => n.name !== cp.name) ?? cp;
      const refused = probeInNetns(cp.netns, `${worker.ip}:4244`, stranger);
      assert.equal(refused.ok, false, 'a certificate of another CA is refused');
      // the relay's :4245 (other clusters' relays dial it) likewise
      const relay = probeInNetns(cp.netns, `${cp.ip}:4245`, relayFiles);
      assert.equal(relay.ok, true, `the cluster CA's certificate opens the relay: ${relay.error}`);
      const relayRefused = probeInNetns(cp.netns, `${cp.ip}:4245`, stranger);
      assert.equal(relayRefused.ok, false, "the relay refuses another CA's certificate");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const text = await cliOk(['--context', 'lab-cluster1', 'hubble', 'status']);
    assert.match(text.out, new RegExp(`Connected Nodes: ${names.length}/${names.length}`));
    const status = await cliOk(['--context', 'lab-cluster1', 'status']);
    assert.match(status.out, /Hubble:\s+OK \([\d.]+ flows\/s, \d+ lost events, \d+ nodes\)/);

    // some traffic: a client pod fetches from the echo server
    const kube = new KubeClient({ server: apiServerURL(cluster) });
    try {
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: ECHO_SERVER_POD });
      const pod = await podRunning(kube, 'server');
      const ip = pod.status.podIP as string;
      await until(
        'a client reaches the server',
        () => reachFromLabelledPod('lab-cluster1', 'client', `http://${ip}:8080/`),
        90_000,
        1000,
      );
    } finally {
      kube.close();
    }
    const r = await cliOk([
      '--context',
      'lab-cluster1',
      'hubble',
      'observe',
      '--last',
      '10',
      '-o',
      'json',
    ]);
    observed = r.out;
    for (const line of r.out.split('\n').filter(Boolean)) {
      const j = JSON.parse(line) as { flow: { nodeName: string }; node_name: string };
      assert.ok(names.includes(j.node_name), `flow from a node of the cluster: ${line}`);
    }
    const bad = await cli(['--context', 'lab-cluster1', 'hubble', 'observe', '--verdict', 'MAYBE']);
    assert.equal(bad.status, 1);
    assert.match(bad.err, /--verdict: unknown value "MAYBE"/);
  },
  { timeout: 600_000 },
);

privilegedTest(
  'privileged: the traffic shows up as flows: hubble observe --to-pod default/server shows it FORWARDED',
  async () => {
    assert.ok(observed !== undefined, 'the first test ran');
    assert.ok(observed.split('\n').filter(Boolean).length > 0, 'observe --last 10 printed no flow');
    const r = await cliOk([
      '--context',
      'lab-cluster1',
      'hubble',
      'observe',
      '--to-pod',
      'default/server',
      '--verdict',
      'FORWARDED',
      '--last',
      '50',
      '-o',
      'json',
    ]);
    const flows = r.out
      .split('\n')
      .filter(Boolean)
      .map(
        (l) =>
          (JSON.parse(l) as { flow: { destination?: { podName?: string; namespace?: string } } })
            .flow,
      );
    assert.ok(flows.length > 0, `no FORWARDED flow to default/server:\n${r.out}`);
    assert.ok(
      flows.every(
        (f) => f.destination?.podName === 'server' && f.destination.namespace === 'default',
      ),
      'the filter only passes flows to default/server',
    );
  },
  { timeout: 120_000 },
);

interface NamedFlow {
  flow: {
    verdict: string;
    source?: { podName?: string; namespace?: string };
    destination?: { podName?: string };
    destinationNames?: string[];
    IP?: { source?: string };
  };
}

privilegedTest(
  'privileged: a name the lab DNS answered names the flows to it; a TRANSLATED flow names its source pod',
  async () => {
    assert.ok(observed !== undefined, 'the first test ran');
    const fqdn = 'server.default.svc.cluster.local';
    await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: SERVICE });
    await until(
      'a client reaches the server by its Service name',
      () => reachFromLabelledPod('lab-cluster1', 'client', `http://${fqdn}:80/`),
      90_000,
      1000,
    );
    const flows = await until(
      'flows named by DNS',
      async () => {
        const r = await cliOk([
          '--context',
          'lab-cluster1',
          'hubble',
          'observe',
          '--to-fqdn',
          fqdn,
          '--last',
          '200',
          '-o',
          'json',
        ]);
        const fs = r.out
          .split('\n')
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as NamedFlow).flow);
        return fs.some((f) => f.verdict === 'TRANSLATED') &&
          fs.some((f) => f.verdict === 'FORWARDED' && f.destination?.podName === 'server')
          ? fs
          : undefined;
      },
      30_000,
      2000,
    );
    assert.ok(flows.every((f) => f.destinationNames?.includes(fqdn)));
    const xlate = flows.filter((f) => f.verdict === 'TRANSLATED');
    assert.ok(
      xlate.some(
        (f) =>
          f.source?.podName?.startsWith('client-') &&
          f.source.namespace === 'default' &&
          f.IP?.source !== '0.0.0.0',
      ),
      `a TRANSLATED flow names the client pod: ${JSON.stringify(xlate)}`,
    );
  },
  { timeout: 300_000 },
);
