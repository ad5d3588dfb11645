import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NAMES } from './names.js';
import { DAEMON_RULES, rulesAllow } from './rbac.js';

describe('rulesAllow', () => {
  const agent = DAEMON_RULES[NAMES.agent]!;
  const operator = DAEMON_RULES[NAMES.operator]!;

  it('decides as the RBAC authorizer: group, resource and verb must all match one rule', () => {
    assert.ok(rulesAllow(agent, { verb: 'watch', group: '', resource: 'pods' }));
    assert.ok(
      rulesAllow(agent, { verb: 'create', group: 'cilium.io', resource: 'ciliumendpoints' }),
    );
    assert.ok(!rulesAllow(agent, { verb: 'create', group: '', resource: 'secrets' }));
    assert.ok(!rulesAllow(agent, { verb: 'get', group: '', resource: 'secrets' }));
    assert.ok(!rulesAllow(agent, { verb: 'create', group: 'apps', resource: 'deployments' }));
    assert.ok(
      !rulesAllow(agent, { verb: 'create', group: 'cilium.io', resource: 'ciliumidentities' }),
    );
    assert.ok(
      rulesAllow(operator, { verb: 'create', group: 'cilium.io', resource: 'ciliumidentities' }),
    );
    // right resource, wrong group
    assert.ok(!rulesAllow(agent, { verb: 'watch', group: 'apps', resource: 'pods' }));
    // a subresource is its own resource
    assert.ok(!rulesAllow(operator, { verb: 'update', group: '', resource: 'nodes/status' }));
  });

  it('"*" matches anything', () => {
    const admin = [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }];
    assert.ok(rulesAllow(admin, { verb: 'delete', group: 'apps', resource: 'deployments' }));
  });
});
