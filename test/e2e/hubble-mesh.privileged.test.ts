/**
 * Hubble across two meshed lab clusters (the seed's cluster1 and cluster2):
 * once `clustermesh connect` joined them, each cluster's relay knows the
 * other's relay (a file the lab writes: its address on :4245, its CA and a
 * client certificate that CA signed) and merges its flows. A cluster2 client
 * reaching a cluster1 pod shows up in `tendril hubble observe` of cluster1
 * with both cluster names, including the flow cluster2's node saw. When
 * cluster2's relay stops, cluster1's relay reports it unavailable in `hubble
 * status`, GetNodes and `tendril status`, and keeps serving its own nodes;
 * disconnecting removes the remote relay.
 *
 * In between, the seed walkthrough's shape drives `tendril hubble ui` (the CLI
 * as a child process) in a real headless Chromium (Debian's `chromium` through
 * puppeteer-core; skipped without it, FAILING under CI=true): echo-service-c1
 * deployed in cluster1 with its global EndpointSlice and a policy admitting
 * app=client of any cluster; cluster2's client calls it by name, an
 * "intruder" pod of cluster2 is denied. The map shows cluster2's client with
 * a green edge to echo-service-c1 in cluster1, and the denied flow red.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import puppeteer, { type Browser } from 'puppeteer-core';
import { privilegedTest } from '../helpers/privileged.js';
import {
  ROOT,
  cli,
  cliOk,
  createMeshedPair,
  podRunning,
  reachFromLabelledPod,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import { ECHO_SERVER_POD } from './pods.js';

const lab = useUniqueLab('hubx');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL } = await import('../../src/lab/state.js');
const { ObserverClient } = await import('../../src/observe/client.js');
const { DAEMON_HUBBLE_RELAY, hubbleRelaySocketPath, hubbleRemoteRelayPaths } =
  await import('../../src/install/hubble.js');
const { addDaemon, listDaemonSpecs, removeDaemon } = await import('../../src/lab/daemons.js');

interface StatusJSON {
  numConnectedNodes?: number;
  numUnavailableNodes?: number;
  unavailableNodes: string[];
}

interface JsonFlow {
  flow: {
    source?: { clusterName?: string; podName?: string; namespace?: string };
    destination?: { clusterName?: string; podName?: string; namespace?: string };
    verdict?: string;
  };
  node_name: string;
}

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: echo-from-clients
spec:
  endpointSelector: {matchLabels: {app: echo-service-c1}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}, matchExpressions: [{key: io.cilium.k8s.policy.cluster, operator: Exists}]}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`;

function findChromium(): string | undefined {
  for (const cmd of ['chromium', 'chromium-browser']) {
    try {
      const p = execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const FORWARDED_GREEN = 'rgb(46,125,50)';
const DROPPED_RED = 'rgb(198,40,40)';

/**
 * The walkthrough's echo-service-c1 in cluster1 behind a policy, `tendril
 * hubble ui` of cluster1 in Chromium, traffic from cluster2: the map's edges.
 */
async function serviceMapOfLiveLab(chromium: string): Promise<void> {
  await cliOk([
    '--context',
    'lab-cluster1',
    'apply',
    '-f',
    join(ROOT, 'examples/seed-walkthrough/echo-c1.yaml'),
  ]);
  await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: POLICY });
  await until(
    'the global EndpointSlice of echo-service-c1 is filled',
    async () =>
      (
        await cli([
          '--context',
          'lab-cluster1',
          'get',
          'endpointslice',
          'echo-service-c1-mesh',
          '-o',
          'json',
        ])
      ).out.includes('"addresses"'),
    120_000,
    1000,
  );
  const port = await freePort();
  const ui = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/tendril.mjs'),
      '--context',
      'lab-cluster1',
      'hubble',
      'ui',
      '--port',
      String(port),
    ],
    { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let uiOut = '';
  ui.stdout.setEncoding('utf8').on('data', (d: string) => (uiOut += d));
  ui.stderr.setEncoding('utf8').on('data', (d: string) => (uiOut += d));
  const profile = mkdtempSync(join(tmpdir(), 'tendril-chromium-'));
  let browser: Browser | undefined;
  try {
    const url = await until(
      '`tendril hubble ui` serving',
      () => /Hubble UI: (http:\/\/\S+)/.exec(uiOut)?.[1],
      60_000,
      300,
    );
    assert.equal(url, `http://127.0.0.1:${port}/`);
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      userDataDir: profile,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url, { waitUntil: 'load' });

    const svcURL = 'http://echo-service-c1.default.svc.cluster.local:80/';
    await until(
      "cluster2's client reaches echo-service-c1 by name",
      () => reachFromLabelledPod('lab-cluster2', 'client', svcURL),
      120_000,
      1000,
    );
    assert.equal(
      await reachFromLabelledPod('lab-cluster2', 'intruder', svcURL),
      false,
      'the policy denies an intruder of cluster2',
    );
    const svc = 'cluster1/default/service/echo-service-c1';
    const probe = `(() => {
      const cy = window.tendrilMap;
      if (!cy) return null;
      const edges = cy.edges().map((e) => ({
        source: e.data('source'),
        target: e.data('target'),
        verdict: e.data('verdict'),
        color: e.style('line-color'),
        sourceParent: cy.getElementById(e.data('source')).parent().id(),
        targetParent: cy.getElementById(e.data('target')).parent().id(),
      }));
      return edges;
    })()`;
    type Edge = {
      source: string;
      target: string;
      verdict: string;
      color: string;
      sourceParent: string;
      targetParent: string;
    };
    const edges = await until(
      'the map shows the client edge to echo-service-c1 and the denied flow',
      async () => {
        const es = (await page.evaluate(probe)) as Edge[] | null;
        if (!es) return undefined;
        const fwd = es.some(
          (e) =>
            e.source.startsWith('cluster2/default/pod/client-') &&
            e.target === svc &&
            e.verdict === 'FORWARDED',
        );
        const denied = es.some(
          (e) => e.source.startsWith('cluster2/default/pod/intruder-') && e.verdict === 'DROPPED',
        );
        return fwd && denied ? es : undefined;
      },
      60_000,
      1000,
    );
    const fwd = edges.find(
      (e) =>
        e.source.startsWith('cluster2/default/pod/client-') &&
        e.target === svc &&
        e.verdict === 'FORWARDED',
    )!;
    assert.equal(fwd.sourceParent, 'cluster:cluster2');
    assert.equal(fwd.targetParent, 'cluster:cluster1');
    assert.equal(fwd.color.replace(/\s/g, ''), FORWARDED_GREEN);
    const denied = edges.filter(
      (e) => e.source.startsWith('cluster2/default/pod/intruder-') && e.verdict === 'DROPPED',
    );
    assert.ok(denied.every((e) => e.color.replace(/\s/g, '') === DROPPED_RED));
    await page.screenshot({ path: join(profile, 'service-map-live.png') as `${string}.png` });
    assert.deepEqual(errors, []);
  } finally {
    const proc = browser?.process();
    await browser?.close().catch(() => proc?.kill('SIGKILL'));
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    ui.kill('SIGTERM');
    await new Promise((r) => (ui.exitCode !== null ? r(undefined) : ui.once('exit', r)));
    rmSync(profile, { recursive: true, force: true });
  }
}

async function hubbleStatus(context: string): Promise<StatusJSON | undefined> {
  const r = await cli(['--context', context, 'hubble', 'status', '-o', 'json']);
  return r.status === 0 ? (JSON.parse(r.out) as StatusJSON) : undefined;
}

after(() => teardownLab(lab));

privilegedTest(
  "privileged: a meshed cluster's relay merges the other cluster's flows and reports it unavailable when its relay stops",
  async () => {
    const { c1, c2 } = await createMeshedPair();
    const all = c1.nodes.length + c2.nodes.length;
    // each relay got a file for the other's relay
    for (const [self, other] of [
      ['cluster1', 'cluster2'],
      ['cluster2', 'cluster1'],
    ] as const) {
      const p = hubbleRemoteRelayPaths(self, other);
      assert.ok(existsSync(p.record), `${self} knows ${other}'s relay: ${p.record}`);
      const rec = JSON.parse(readFileSync(p.record, 'utf8')) as { address: string };
      assert.match(rec.address, /:4245$/);
    }
    for (const ctx of ['lab-cluster1', 'lab-cluster2'])
      await until(
        `${ctx}'s relay counts the nodes of both clusters`,
        async () => {
          const s = await hubbleStatus(ctx);
          return s?.numConnectedNodes === all && s.unavailableNodes.length === 0 ? s : undefined;
        },
        120_000,
        1000,
      );
    const relay1 = new ObserverClient({ address: `unix:${hubbleRelaySocketPath('cluster1')}` });
    try {
      const names = (await relay1.getNodes()).map((n) => n.name).sort();
      assert.deepEqual(names, [...c1.nodes, ...c2.nodes].map((n) => n.name).sort());
    } finally {
      relay1.close();
    }

    // cluster2's client reaches a pod of cluster1
    const kube = new KubeClient({ server: apiServerURL(c1) });
    let ip: string;
    try {
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: ECHO_SERVER_POD });
      ip = (await podRunning(kube, 'server')).status.podIP as string;
    } finally {
      kube.close();
    }
    await until(
      "cluster2's client reaches cluster1's server",
      () => reachFromLabelledPod('lab-cluster2', 'client', `http://${ip}:8080/`),
      120_000,
      1000,
    );
    const c2Nodes = new Set(c2.nodes.map((n) => n.name));
    const c1Nodes = new Set(c1.nodes.map((n) => n.name));
    const flows = await until(
      "cluster1's observe shows the flow from cluster2's client, seen on both clusters' nodes",
      async () => {
        const r = await cli([
          '--context',
          'lab-cluster1',
          'hubble',
          'observe',
          '--from-cluster',
          'cluster2',
          '--to-pod',
          'default/server',
          '--last',
          '200',
          '-o',
          'json',
        ]);
        if (r.status !== 0) throw new Error(r.all);
        const fs = r.out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as JsonFlow);
        const named = fs.filter(
          (f) =>
            f.flow.source?.clusterName === 'cluster2' &&
            f.flow.destination?.clusterName === 'cluster1' &&
            f.flow.destination.podName === 'server',
        );
        return named.some((f) => c2Nodes.has(f.node_name)) &&
          named.some((f) => c1Nodes.has(f.node_name))
          ? named
          : undefined;
      },
      60_000,
      2000,
    );
    assert.ok(
      flows.some((f) => f.flow.source?.podName?.startsWith('client-')),
      `the source pod is named: ${JSON.stringify(flows[0])}`,
    );

    // the seed's walkthrough shape in the browser's service map
    const chromium = findChromium();
    if (chromium) await serviceMapOfLiveLab(chromium);
    else if (process.env.CI === 'true')
      assert.fail('chromium is missing under CI: run scripts/setup.sh (Debian package chromium)');
    else console.log('# skipped the service map part: chromium is not installed');

    // cluster2's relay stops: cluster1 reports it and keeps serving its own nodes
    const spec = listDaemonSpecs('cluster2').find((d) => d.name === DAEMON_HUBBLE_RELAY)!;
    assert.ok(spec, 'cluster2 runs a relay');
    await removeDaemon('cluster2', DAEMON_HUBBLE_RELAY, { wait: true });
    try {
      const st = await until(
        "cluster1's relay reports cluster2's relay unavailable",
        async () => {
          const s = await hubbleStatus('lab-cluster1');
          return s?.unavailableNodes.includes('cluster:cluster2') ? s : undefined;
        },
        60_000,
        1000,
      );
      assert.equal(st.numConnectedNodes, c1.nodes.length, 'cluster1 nodes still connected');
      const text = await cliOk(['--context', 'lab-cluster1', 'hubble', 'status']);
      assert.match(text.out, /Unavailable Nodes: cluster:cluster2/);
      const status = await cliOk(['--context', 'lab-cluster1', 'status']);
      assert.match(status.out, /Hubble:\s+Warning \(.*unavailable: cluster:cluster2\)/);
      const relay = new ObserverClient({ address: `unix:${hubbleRelaySocketPath('cluster1')}` });
      try {
        const nodes = await relay.getNodes();
        assert.equal(
          nodes.find((n) => n.name === 'cluster:cluster2')?.state,
          'NODE_UNAVAILABLE',
          JSON.stringify(nodes),
        );
        assert.ok(
          nodes.filter((n) => c1Nodes.has(n.name)).every((n) => n.state === 'NODE_CONNECTED'),
        );
      } finally {
        relay.close();
      }
      const obs = await cli([
        '--context',
        'lab-cluster1',
        'hubble',
        'observe',
        '--to-pod',
        'default/server',
        '--last',
        '20',
        '-o',
        'json',
      ]);
      assert.equal(obs.status, 0, obs.all);
      assert.match(obs.err, /Warning: unavailable node\(s\): cluster:cluster2/);
      const lines = obs.out.split('\n').filter(Boolean);
      assert.ok(lines.length > 0, 'the flows of cluster1 are still served');
      assert.ok(
        lines.every((l) => c1Nodes.has((JSON.parse(l) as JsonFlow).node_name)),
        'only cluster1 nodes answer',
      );
    } finally {
      addDaemon('cluster2', spec);
    }

    // disconnecting removes the remote relays on both sides
    await cliOk([
      'clustermesh',
      'disconnect',
      '--context',
      'lab-cluster2',
      '--destination-context',
      'lab-cluster1',
    ]);
    assert.equal(existsSync(hubbleRemoteRelayPaths('cluster1', 'cluster2').record), false);
    assert.equal(existsSync(hubbleRemoteRelayPaths('cluster2', 'cluster1').record), false);
    const alone = await until(
      "cluster1's relay serves its own nodes only",
      async () => {
        const s = await hubbleStatus('lab-cluster1');
        return s?.numConnectedNodes === c1.nodes.length && s.unavailableNodes.length === 0
          ? s
          : undefined;
      },
      30_000,
      1000,
    );
    assert.equal(alone.numUnavailableNodes ?? 0, 0);
  },
  { timeout: 900_000 },
);
