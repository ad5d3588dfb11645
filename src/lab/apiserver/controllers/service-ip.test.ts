import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../../k8s/objects.js';
import { ApiError } from '../../../k8s/status.js';
import { startTestApiServer, type TestApiServer } from '../testing.js';
import { parseServiceCIDR } from './service-ip.js';

const svc = (
  name: string,
  namespace = 'default',
  spec: Record<string, unknown> = {},
  annotations?: Record<string, string>,
): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
  spec: {
    ports: [
      { port: 53, protocol: 'UDP', name: 'dns' },
      { port: 53, protocol: 'TCP', name: 'dns-tcp' },
    ],
    ...spec,
  },
});

describe('ClusterIP and NodePort allocation', () => {
  const servers: TestApiServer[] = [];
  after(async () => {
    for (const s of servers) await s.cleanup();
  });

  it('reserves the 1st address for kubernetes and the 10th for cluster DNS', async () => {
    const t = await startTestApiServer({ serviceCIDR: '10.100.0.0/24', controllers: false });
    servers.push(t);
    const c = t.client;
    assert.equal((await c.get('v1', 'Service', 'kubernetes')).spec.clusterIP, '10.100.0.1');
    const ips = new Set<string>();
    for (let i = 0; i < 40; i++) ips.add((await c.create(svc(`s${i}`))).spec.clusterIP);
    assert.equal(ips.size, 40);
    for (const ip of ips)
      assert.ok(Number(ip.split('.')[3]) > 10, `${ip} is outside the reserved band`);
    const dns = await c.create(svc('kube-dns', 'kube-system'));
    assert.equal(dns.spec.clusterIP, '10.100.0.10');
    await c.delete('v1', 'Service', 'kube-dns', { namespace: 'kube-system' });
    const annotated = await c.create(
      svc('coredns', 'kube-system', {}, { 'tendril.io/reserved-dns': 'true' }),
    );
    assert.equal(annotated.spec.clusterIP, '10.100.0.10');
    await assert.rejects(
      c.create(svc('kube-dns', 'kube-system')),
      (e: unknown) =>
        e instanceof ApiError &&
        e.httpCode === 422 &&
        /already allocated to kube-system\/coredns/.test(e.message),
    );
    const headless = await c.create(svc('hl', 'default', { clusterIP: 'None' }));
    assert.deepEqual(headless.spec.clusterIPs, ['None']);
    await assert.rejects(
      c.patch('v1', 'Service', 's0', { spec: { clusterIP: '10.100.0.99' } }),
      /may not change once set/,
    );
  });

  it('reserves nothing for a dry run, and frees addresses on delete', async () => {
    const t = await startTestApiServer({ serviceCIDR: '10.100.0.0/24', controllers: false });
    servers.push(t);
    const c = t.client;
    const dry = await c.create(svc('d', 'default', { clusterIP: '10.100.0.50' }), { dryRun: true });
    assert.equal(dry.spec.clusterIP, '10.100.0.50');
    const real = await c.create(svc('r', 'default', { clusterIP: '10.100.0.50' }));
    assert.equal(real.spec.clusterIP, '10.100.0.50');
    await c.delete('v1', 'Service', 'r');
    assert.equal(
      (await c.create(svc('r2', 'default', { clusterIP: '10.100.0.50' }))).spec.clusterIP,
      '10.100.0.50',
    );
  });

  it('allocates distinct node ports, keeps them across updates and refuses taken ones', async () => {
    const t = await startTestApiServer({ controllers: false });
    servers.push(t);
    const c = t.client;
    const np = await c.create(svc('np', 'default', { type: 'NodePort' }));
    const ports = (np.spec.ports as Array<{ nodePort: number }>).map((p) => p.nodePort);
    assert.equal(new Set(ports).size, 2);
    for (const p of ports) assert.ok(p >= 30000 && p <= 32767);
    const upd = await c.patch('v1', 'Service', 'np', { metadata: { labels: { x: 'y' } } });
    assert.deepEqual(
      (upd.spec.ports as Array<{ nodePort: number }>).map((p) => p.nodePort),
      ports,
    );
    await assert.rejects(
      c.create(
        svc('np2', 'default', { type: 'NodePort', ports: [{ port: 80, nodePort: ports[0] }] }),
      ),
      (e: unknown) =>
        e instanceof ApiError &&
        /spec.ports\[0\].nodePort: Invalid value: \d+: provided port is already allocated/.test(
          e.message,
        ),
    );
    await assert.rejects(
      c.create(svc('np3', 'default', { type: 'NodePort', ports: [{ port: 80, nodePort: 80 }] })),
      /not in the valid range/,
    );
  });

  it('refuses bad service CIDRs with a hint', () => {
    assert.throws(
      () => parseServiceCIDR('10.96.0.1/16'),
      (e: Error & { hint?: string }) =>
        /host bits are set/.test(e.message) && /10\.96\.0\.0\/16/.test(e.hint ?? ''),
    );
    assert.throws(() => parseServiceCIDR('10.96.0.0/31'), /invalid service CIDR/);
    assert.throws(() => parseServiceCIDR('nope'), /invalid service CIDR/);
  });
});
