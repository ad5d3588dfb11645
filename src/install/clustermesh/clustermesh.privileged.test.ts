/**
 * The mesh end to end on lab clusters, as root, through the CLI: connect
 * refusals (not installed, same name, same ID, overlapping pod CIDRs),
 * enable on cluster1 only, connect enabling cluster2, status 2/2 from both
 * sides, mutual TLS and etcd roles checked from a node of the other
 * cluster with etcdctl, a remote etcd going away (stale, reported, exit 1)
 * and coming back, a global service counted across, disconnect and disable.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { privilegedTest } from '../../../test/helpers/privileged.js';

const prefix = `tendril-t${process.pid}x`;
const home = mkdtempSync(join(tmpdir(), 'tendril-mesh-e2e-'));
process.env.TENDRIL_LAB_PREFIX = prefix;
process.env.TENDRIL_HOME = home;

const { projectRoot, addDaemon, removeDaemon, listDaemonSpecs } =
  await import('../../lab/daemons.js');
const { loadCluster, saveCluster } = await import('../../lab/state.js');
const { writeInstallState, readInstallState } = await import('../install-state.js');
const { meshPaths, remotePaths } = await import('../../clustermesh/mesh-files.js');
const { DAEMON_MESH_ETCD } = await import('./enable.js');

const cli = (args: string[], timeout = 120_000) => {
  const r = spawnSync(process.execPath, [join(projectRoot(), 'bin/tendril.mjs'), ...args], {
    env: process.env,
    encoding: 'utf8',
    timeout,
  });
  return {
    status: r.status,
    out: r.stdout ?? '',
    err: r.stderr ?? '',
    all: `${r.stdout}\n${r.stderr}`,
  };
};
const ok = (args: string[], timeout?: number) => {
  const r = cli(args, timeout);
  assert.equal(r.status, 0, `tendril ${args.join(' ')} failed:\n${r.all}`);
  return r;
};

after(() => {
  cli(['lab', 'delete', '--all']);
  rmSync(home, { recursive: true, force: true });
});

privilegedTest(
  'privileged: clustermesh enable, connect (refusals, auto-enable), status both ways, mTLS and roles, remote outage, disconnect, disable',
  async () => {
    ok(['lab', 'create', 'cluster1', '--nodes', '1']);
    ok(['lab', 'create', 'cluster2', '--nodes', '1']);
    ok(['lab', 'create', 'cluster3', '--nodes', '0']);
    ok(['install', '--context', 'lab-cluster1', '--cluster-name', 'cluster1', '--cluster-id', '1']);
    ok(['install', '--context', 'lab-cluster2', '--cluster-name', 'cluster2', '--cluster-id', '2']);

    // Refusals, each with its reason, before anything changes.
    let r = cli([
      'clustermesh',
      'connect',
      '--context',
      'lab-cluster1',
      '--destination-context',
      'lab-cluster3',
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.err, /Tendril is not installed on lab-cluster3/);
    const base = { ...readInstallState('cluster2')!, labCluster: 'cluster3' };
    // `lab create` itself refuses overlapping pod CIDRs, so cluster3's recorded CIDR is changed for the last case
    // (clusters made elsewhere, e.g. real ones, can overlap).
    const c3 = loadCluster('cluster3');
    for (const [name, id, cidr, re] of [
      ['cluster1', 3, c3.podCIDR, /both are named "cluster1"/],
      ['cluster3', 1, c3.podCIDR, /both have cluster ID 1/],
      [
        'cluster3',
        3,
        '10.244.128.0/17',
        /pod CIDRs overlap \(10\.244\.0\.0\/16 and 10\.244\.128\.0\/17\)/,
      ],
    ] as const) {
      writeInstallState({ ...base, clusterName: name, clusterId: id });
      saveCluster({ ...c3, podCIDR: cidr });
      r = cli([
        'clustermesh',
        'connect',
        '--context',
        'lab-cluster1',
        '--destination-context',
        'lab-cluster3',
      ]);
      assert.notEqual(r.status, 0, r.all);
      assert.match(r.err, re);
      assert.match(r.err, /hint:/);
    }
    assert.equal(readInstallState('cluster1') !== undefined, true);
    assert.throws(
      () => readFileSync(meshPaths('cluster1').config),
      'a refused connect changes nothing',
    );

    // The seed: enable on cluster1 only, connect from cluster2.
    r = ok(['clustermesh', 'enable', '--context', 'lab-cluster1', '--service-type', 'NodePort']);
    assert.match(
      r.out,
      /Cluster mesh enabled on lab-cluster1: cluster1 \(ID 1\) at https:\/\/172\.30\.\d+\.10:32379/,
    );
    // cluster2 is enabled by connect, with a LoadBalancer address from the lab's pool (cluster1 reaches it there).
    r = ok([
      'clustermesh',
      'connect',
      '--context',
      'lab-cluster2',
      '--destination-context',
      'lab-cluster1',
      '--service-type',
      'LoadBalancer',
    ]);
    assert.match(
      r.out,
      /not enabled on lab-cluster2 yet: enabling it \(service type LoadBalancer\)/,
    );
    assert.match(
      r.out,
      /cluster1 \(lab-cluster1\) can now read cluster2 at https:\/\/172\.30\.255\.\d+:2379/,
    );
    for (const [ctx, local, other] of [
      ['lab-cluster1', 'cluster1', 'cluster2'],
      ['lab-cluster2', 'cluster2', 'cluster1'],
    ] as const) {
      r = ok(
        ['clustermesh', 'status', '--context', ctx, '--wait', '--wait-duration', '90s'],
        150_000,
      );
      assert.match(r.out, /Clustermesh:\s+OK/);
      assert.match(r.out, /Cluster Mesh: 2\/2 clusters/);
      assert.match(r.out, new RegExp(`^  ${local} \\(local\\)$`, 'm'));
      assert.match(r.out, new RegExp(`^  ${other}$`, 'm'));
      assert.match(r.out, /All \d+ nodes are connected to all clusters/);
      assert.match(r.out, new RegExp(`- ${other} \\(ID \\d\\): configured, connected, synced`));
    }
    const json = JSON.parse(
      ok(['clustermesh', 'status', '--context', 'lab-cluster1', '-o', 'json']).out,
    ) as { ready: boolean; clusters: { name: string; counts: { nodes: number } }[] };
    assert.equal(json.ready, true);
    assert.equal(json.clusters.find((c) => c.name === 'cluster2')?.counts.nodes, 2);

    // Mutual TLS and etcd roles, from a node of cluster2 (what its clustermesh-apiserver uses).
    const c1 = loadCluster('cluster1');
    const c2 = loadCluster('cluster2');
    const endpoint = `https://${c1.nodes[0]!.ip}:32379`;
    const rp = remotePaths('cluster2', 'cluster1');
    const etcdctl = (args: string[], withCert: boolean) =>
      spawnSync(
        'nsenter',
        [
          `--net=/run/netns/${c2.nodes[1]!.netns}`,
          'etcdctl',
          `--endpoints=${endpoint}`,
          `--cacert=${rp.caCert}`,
          '--dial-timeout=3s',
          '--command-timeout=5s',
          ...(withCert ? [`--cert=${rp.clientCert}`, `--key=${rp.clientKey}`] : []),
          ...args,
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, ETCDCTL_API: '3' },
          timeout: 20_000,
        },
      );
    let e = etcdctl(['get', '--prefix', '--keys-only', 'cilium/state/nodes/'], false);
    assert.notEqual(e.status, 0, `no client certificate must be refused: ${e.stdout}`);
    e = etcdctl(['get', '--prefix', '--keys-only', 'cilium/state/nodes/'], true);
    assert.equal(e.status, 0, e.stderr);
    assert.match(e.stdout, /cilium\/state\/nodes\/v1\/cluster1\/cluster1-control-plane/);
    e = etcdctl(['put', 'cilium/state/nodes/v1/cluster1/evil', '{}'], true);
    assert.notEqual(e.status, 0);
    assert.match(e.stderr, /permission denied/);

    // cluster1's etcd goes away: cluster2 keeps cluster1's state as stale and says why; it comes back.
    const spec = listDaemonSpecs('cluster1').find((d) => d.name === DAEMON_MESH_ETCD)!;
    await removeDaemon('cluster1', DAEMON_MESH_ETCD, { wait: true });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        r = cli(['clustermesh', 'status', '--context', 'lab-cluster2']);
        if (/not connected/.test(r.out) || Date.now() > deadline) break;
        await new Promise((res) => setTimeout(res, 1000));
      }
      assert.equal(r.status, 1, r.all);
      assert.match(r.out, /Cluster Mesh: 1\/2 clusters/);
      assert.match(r.out, /cluster1 \(ID 1\): configured, not connected, not synced, stale/);
      assert.match(r.out, /endpoint unreachable/);
      assert.match(r.out, /--context lab-cluster1/);
    } finally {
      addDaemon('cluster1', spec);
    }
    ok(
      ['clustermesh', 'status', '--context', 'lab-cluster2', '--wait', '--wait-duration', '60s'],
      90_000,
    );

    // A global service of cluster1 is counted in cluster2.
    ok([
      '--context',
      'lab-cluster1',
      'apply',
      '-f',
      join(projectRoot(), 'examples/seed-walkthrough/echo-c1.yaml'),
    ]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      r = cli(['clustermesh', 'status', '--context', 'lab-cluster2']);
      if (/Global services: 0 exported by cluster2, 1 from remote clusters/.test(r.out)) break;
      assert.ok(Date.now() < deadline, `global service not seen from cluster2:\n${r.out}`);
      await new Promise((res) => setTimeout(res, 1000));
    }

    // cluster1 switches to LoadBalancer: cluster2 is told the new endpoint and reconnects there.
    r = ok([
      'clustermesh',
      'enable',
      '--context',
      'lab-cluster1',
      '--service-type',
      'LoadBalancer',
    ]);
    assert.match(
      r.out,
      /Told cluster2 about the new access endpoint https:\/\/172\.30\.255\.\d+:2379/,
    );
    ok(
      ['clustermesh', 'status', '--context', 'lab-cluster2', '--wait', '--wait-duration', '60s'],
      90_000,
    );
    const viaLB = JSON.parse(
      ok(['clustermesh', 'status', '--context', 'lab-cluster2', '-o', 'json']).out,
    ) as {
      clusters: { name: string; endpoints: string[]; connected: boolean }[];
    };
    const c1line = viaLB.clusters.find((c) => c.name === 'cluster1')!;
    assert.match(c1line.endpoints[0]!, /^https:\/\/172\.30\.255\.\d+:2379$/);
    assert.equal(c1line.connected, true);

    // Disconnect: each side alone again, and cluster1's etcd no longer admits cluster2.
    ok([
      'clustermesh',
      'disconnect',
      '--context',
      'lab-cluster2',
      '--destination-context',
      'lab-cluster1',
    ]);
    r = ok([
      'clustermesh',
      'status',
      '--context',
      'lab-cluster1',
      '--wait',
      '--wait-duration',
      '30s',
    ]);
    assert.match(r.out, /Cluster Mesh: 1\/1 clusters/);
    const revokedDeadline = Date.now() + 20_000;
    for (;;) {
      const out = JSON.parse(
        ok(['clustermesh', 'status', '--context', 'lab-cluster1', '-o', 'json']).out,
      ) as { apiserver: { readers: string[] } };
      if (out.apiserver.readers.length === 0) break;
      assert.ok(Date.now() < revokedDeadline, 'reader not revoked');
      await new Promise((res) => setTimeout(res, 500));
    }
    ok(['clustermesh', 'disable', '--context', 'lab-cluster1']);
    ok(['clustermesh', 'disable', '--context', 'lab-cluster2']);
    r = cli(['clustermesh', 'status', '--context', 'lab-cluster1']);
    assert.equal(r.status, 1);
    assert.match(r.out, /Clustermesh:\s+disabled/);
    assert.equal(
      listDaemonSpecs('cluster1').some((d) => d.name.startsWith('clustermesh-')),
      false,
    );
  },
  { timeout: 600_000 },
);
