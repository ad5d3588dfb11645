import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EndpointInfo } from '../agent/api/types.js';
import { endpointView } from './endpoint.js';
import { parseJsonPath } from '../k8s/jsonpath.js';

const renderJsonPath = (t: string, v: unknown): string => parseJsonPath(t).execute(v);

const ep = {
  id: 12,
  identity: 65792,
  labels: { app: 'server' },
  state: 'ready',
  podNamespace: 'default',
  podName: 'server',
  ip: '10.244.1.7',
  hostIfName: 'lxc1234',
  containerId: 'c1',
  createdAt: '2026-12-06T00:00:00Z',
} as unknown as EndpointInfo;

describe('tendril endpoint', () => {
  it('builds the view with the policy in effect per direction', () => {
    const v = endpointView('node1', ep, {
      endpointId: 12,
      podNamespace: 'default',
      podName: 'server',
      identity: 65792,
      enforcement: 'default',
      ingress: { enforced: true, policies: ['CiliumNetworkPolicy default/x'], entries: [] },
      egress: { enforced: false, policies: [], entries: [] },
    });
    assert.equal(v.status.identity.id, 65792);
    assert.deepEqual(v.status.policy.ingress, {
      enforcing: true,
      policies: ['CiliumNetworkPolicy default/x'],
      entries: 0,
    });
    assert.equal(v.status.policy.egress.enforcing, false);
    assert.equal(
      endpointView('node1', ep).status.policy.ingress.enforcing,
      false,
      'no computed policy yet',
    );
  });

  it('renders jsonpath templates', () => {
    const v = endpointView('node1', ep);
    assert.equal(renderJsonPath('{.status.identity.id}', v), '65792');
    assert.equal(
      renderJsonPath('{.pod.name}={.status.networking.addressing[0].ipv4}{"\\n"}', v),
      'server=10.244.1.7\n',
    );
    assert.equal(renderJsonPath('{.nope.deeper}', v), '');
  });
});
