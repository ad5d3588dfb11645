import assert from 'node:assert/strict';
import { test } from 'node:test';
import { meshAnnotationsCondition, meshServiceOptions } from './annotations.js';
import { slice, svc } from './fixtures.js';

test('meshServiceOptions: annotation table', () => {
  const cases: {
    ann: Record<string, string>;
    want: { global: boolean; shared: boolean; affinity: string };
    issues?: string[];
  }[] = [
    { ann: {}, want: { global: false, shared: true, affinity: 'none' } },
    {
      ann: { 'service.cilium.io/global': 'true' },
      want: { global: true, shared: true, affinity: 'none' },
    },
    {
      ann: { 'service.cilium.io/global': 'TRUE' },
      want: { global: true, shared: true, affinity: 'none' },
    },
    {
      ann: { 'io.cilium/global-service': 'true' },
      want: { global: true, shared: true, affinity: 'none' },
    },
    {
      ann: { 'service.cilium.io/global': 'false', 'io.cilium/global-service': 'true' },
      want: { global: false, shared: true, affinity: 'none' },
    },
    {
      ann: { 'service.cilium.io/global': 'yes' },
      want: { global: false, shared: true, affinity: 'none' },
      issues: ['SERVICE_INVALID_GLOBAL'],
    },
    {
      ann: { 'service.cilium.io/global': 'true', 'service.cilium.io/shared': 'false' },
      want: { global: true, shared: false, affinity: 'none' },
    },
    {
      ann: { 'service.cilium.io/global': 'true', 'io.cilium/shared-service': 'false' },
      want: { global: true, shared: false, affinity: 'none' },
    },
    {
      ann: { 'service.cilium.io/shared': 'maybe' },
      want: { global: false, shared: true, affinity: 'none' },
      issues: ['SERVICE_INVALID_SHARED'],
    },
    {
      ann: { 'service.cilium.io/affinity': 'local' },
      want: { global: false, shared: true, affinity: 'local' },
    },
    {
      ann: { 'service.cilium.io/affinity': 'Remote' },
      want: { global: false, shared: true, affinity: 'remote' },
    },
    {
      ann: { 'service.cilium.io/affinity': 'none' },
      want: { global: false, shared: true, affinity: 'none' },
    },
    {
      ann: { 'service.cilium.io/affinity': 'nearest' },
      want: { global: false, shared: true, affinity: 'none' },
      issues: ['SERVICE_INVALID_AFFINITY'],
    },
  ];
  for (const c of cases) {
    const o = meshServiceOptions(svc('echo', { annotations: c.ann }));
    assert.deepEqual(
      { global: o.global, shared: o.shared, affinity: o.affinity },
      c.want,
      JSON.stringify(c.ann),
    );
    assert.deepEqual(
      o.issues.map((i) => i.code),
      c.issues ?? [],
      JSON.stringify(c.ann),
    );
    for (const i of o.issues) {
      assert.equal(i.name, 'echo');
      assert.equal(i.kind, 'Service');
    }
  }
});

test("meshServiceOptions: the seed's marker EndpointSlice makes the service global (same namespace, same name only)", () => {
  const s = svc('echo-service-c1');
  assert.equal(
    meshServiceOptions(s, [slice('echo-service-c1', [], { marker: true })]).global,
    true,
  );
  assert.equal(
    meshServiceOptions(s, [slice('echo-service-c1', [])]).global,
    false,
    'an ordinary slice does not',
  );
  assert.equal(meshServiceOptions(s, [slice('other', [], { marker: true })]).global, false);
  assert.equal(
    meshServiceOptions(s, [slice('echo-service-c1', [], { marker: true, ns: 'prod' })]).global,
    false,
  );
});

test('meshServiceOptions: an MCS export makes the service global and shared unless shared is set', () => {
  const o = meshServiceOptions(svc('x'), [], true);
  assert.deepEqual([o.global, o.shared], [true, true]);
  const p = meshServiceOptions(
    svc('x', { annotations: { 'service.cilium.io/shared': 'false' } }),
    [],
    true,
  );
  assert.deepEqual([p.global, p.shared], [true, false]);
});

test('meshAnnotationsCondition: an invalid affinity gives a False condition; valid annotations none', () => {
  const bad = svc('bad', {
    annotations: { 'service.cilium.io/global': 'true', 'service.cilium.io/affinity': 'nearest' },
  });
  assert.deepEqual(meshAnnotationsCondition(bad), {
    type: 'tendril.io/MeshAnnotationsValid',
    status: 'False',
    reason: 'InvalidAnnotation',
    message:
      'annotation service.cilium.io/affinity: "nearest" is not one of local, remote, none; using none (SERVICE_INVALID_AFFINITY)',
  });
  const good = svc('good', {
    annotations: { 'service.cilium.io/global': 'true', 'service.cilium.io/affinity': 'local' },
  });
  assert.equal(meshAnnotationsCondition(good), undefined);
});
