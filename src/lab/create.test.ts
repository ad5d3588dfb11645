import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiServerSpec, kubeletSpec, planCluster } from './create.js';
import { nodeName, podNetns } from './layout.js';
import { clusterDNSAddress, validateClusterName, type LabCluster } from './state.js';

process.env.TENDRIL_LAB_PREFIX = 'tendril-unit';

test('names and addresses follow the layout (kind node names, underlay, pod CIDRs)', () => {
  const c = planCluster({ name: 'cluster1' }, []);
  assert.equal(c.index, 1);
  assert.equal(c.podCIDR, '10.244.0.0/16');
  assert.equal(c.serviceCIDR, '10.96.0.0/16');
  assert.deepEqual(
    c.nodes.map((n) => [n.name, n.role, n.netns, n.ip, n.podCIDR]),
    [
      [
        'cluster1-control-plane',
        'control-plane',
        'tendril-unit-cluster1-control-plane',
        '172.30.1.10',
        '10.244.0.0/24',
      ],
      ['cluster1-worker', 'worker', 'tendril-unit-cluster1-worker', '172.30.1.11', '10.244.1.0/24'],
      [
        'cluster1-worker2',
        'worker',
        'tendril-unit-cluster1-worker2',
        '172.30.1.12',
        '10.244.2.0/24',
      ],
    ],
  );
  assert.equal(nodeName('c', 3), 'c-worker3');
  assert.equal(podNetns('3cccbd63-f9c8-4e8e-974c-a6eac1f36168'), 'tendril-unit-pod-3cccbd63f9c8');
  assert.equal(clusterDNSAddress(c), '10.96.0.10');
});

test('the lowest free index is taken; default pod CIDRs differ between clusters', () => {
  const c1 = planCluster({ name: 'a' }, []);
  const c3 = { ...planCluster({ name: 'c' }, []), index: 3, podCIDR: '10.246.0.0/16' };
  const b = planCluster({ name: 'b', nodes: 1 }, [c1, c3]);
  assert.equal(b.index, 2);
  assert.equal(b.podCIDR, '10.245.0.0/16');
  assert.equal(b.nodes.length, 2);
  assert.equal(b.nodes[1]!.ip, '172.30.2.11');
});

test('refusals: overlap (names both clusters, CIDRs and the flag), duplicates, bad names, bad sizes', () => {
  const a = planCluster({ name: 'alpha' }, []);
  assert.throws(
    () => planCluster({ name: 'beta', podCIDR: '10.244.16.0/20' }, [a]),
    (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'LAB_CIDR_OVERLAP');
      assert.match(
        err.message,
        /pod CIDR 10\.244\.16\.0\/20 of new cluster "beta" overlaps pod CIDR 10\.244\.0\.0\/16 of lab cluster "alpha"/,
      );
      assert.match(err.hint!, /--pod-cidr/);
      return true;
    },
  );
  // an explicit pod CIDR elsewhere makes the next default collide: still refused, with the flag to pass
  const odd = { ...a, name: 'odd', index: 1, podCIDR: '10.245.0.0/16' };
  assert.throws(
    () => planCluster({ name: 'next' }, [odd]),
    /overlaps pod CIDR 10\.245\.0\.0\/16 of lab cluster "odd"/,
  );
  assert.throws(() => planCluster({ name: 'alpha' }, [a]), /already exists/);
  assert.throws(
    () => planCluster({ name: 'x', podCIDR: '10.96.0.0/12' }, []),
    /overlaps service CIDR/,
  );
  assert.throws(
    () => planCluster({ name: 'x', podCIDR: '172.30.0.0/16' }, []),
    /overlaps the lab underlay/,
  );
  assert.throws(
    () => planCluster({ name: 'x', podCIDR: '10.1.0.0/23' }, []),
    /cannot hold a \/24 for each of 3 nodes/,
  );
  assert.throws(() => planCluster({ name: 'x', nodes: -1 }, []), /--nodes/);
  for (const bad of ['Cluster1', 'a_b', '-a', 'a-', '', 'x'.repeat(33), 'underlay', 'pod-x']) {
    assert.throws(() => validateClusterName(bad), /lab cluster name/, bad);
  }
  validateClusterName('cluster-1');
});

test('daemon specs: absolute paths, the API server flags, nodes in their namespaces', () => {
  const c: LabCluster = {
    ...planCluster({ name: 'k', apiStore: 'etcd' }, []),
    apiPort: 41234,
    etcdEndpoints: ['http://127.0.0.1:2379'],
  };
  const api = apiServerSpec(c);
  assert.ok(api.command[0]!.startsWith('/'));
  assert.ok(api.command.some((a) => a.startsWith('file://') && a.endsWith('loader.mjs')));
  assert.ok(api.command.some((a) => a.endsWith('/src/lab/apiserver/main.ts')));
  const args = api.command.join(' ');
  assert.match(
    args,
    /--cluster k --data-dir \S+\/clusters\/k\/apiserver --listen 127\.0\.0\.1:41234 --socket \S+\/api\.sock --service-cidr 10\.96\.0\.0\/16 --advertise-address 172\.30\.1\.10:6443 --store etcd --etcd-endpoints http:\/\/127\.0\.0\.1:2379/,
  );
  // the API server runs in the root namespace; with https it serves the nodes
  // in the control plane's namespace itself, and the CLI on 127.0.0.1
  assert.equal(api.netns, undefined);
  const https = apiServerSpec({
    ...c,
    apiSecureSocket: '/s/api-tls.sock',
    apiSecurePort: 41235,
  }).command.join(' ');
  assert.match(
    https,
    /--secure-socket \/s\/api-tls\.sock .*--node-listen 172\.30\.1\.10:6443 --node-netns tendril-unit-k-control-plane --secure-listen 127\.0\.0\.1:41235$/,
  );
  const kl = kubeletSpec(c, c.nodes[2]!);
  assert.equal(kl.name, 'kubelet-k-worker2');
  assert.equal(kl.netns, 'tendril-unit-k-worker2');
  assert.match(kl.command.join(' '), /kubelet\/main\.ts --cluster k --node k-worker2$/);
});
