import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NAMES } from './names.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseApiVersion, resourceForKind } from '../../k8s/resources.js';
import { DAEMON_RULES, rulesAllow, type ResourceRequest } from './rbac.js';

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

describe('RBAC covers what the daemons do', () => {
  const repo = fileURLToPath(new URL('../../../', import.meta.url));
  const DAEMON_DIRS: Record<string, string[]> = {
    [NAMES.agent]: ['src/agent'],
    [NAMES.operator]: ['src/operator'],
    [NAMES.dns]: ['src/dns'],
    [NAMES.meshApiserver]: ['src/clustermesh'],
  };
  const CONSTS: Record<string, string> = {
    CILIUM_V2: 'cilium.io/v2',
    MCS_API_VERSION: 'multicluster.x-k8s.io/v1alpha1',
  };
  const sources = (dir: string): string[] =>
    readdirSync(join(repo, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.includes('testing'))
      .map((f) => readFileSync(join(repo, dir, f), 'utf8'));
  const groupOf = (apiVersion: string) => parseApiVersion(apiVersion).group;

  /** What a daemon's code asks of the API server, from its literal watch paths and calls. */
  function requests(daemon: string): ResourceRequest[] {
    const out: ResourceRequest[] = [];
    for (const text of DAEMON_DIRS[daemon]!.flatMap(sources)) {
      // watch paths: '/api/v1/pods', '/apis/cilium.io/v2/ciliumendpoints'
      for (const m of text.matchAll(
        /'\/api\/v1\/([a-z]+)'|'\/apis\/([a-z0-9.-]+)\/[a-z0-9]+\/([a-z]+)'/g,
      )) {
        const group = m[1] ? '' : m[2]!;
        const resource = m[1] ?? m[3]!;
        out.push({ verb: 'list', group, resource }, { verb: 'watch', group, resource });
      }
      // calls: kube.delete(CILIUM_V2, 'CiliumIdentity', ...), kube.patch('v1', 'Node', ...)
      for (const m of text.matchAll(
        /\.(get|getOrUndefined|list|delete|patch)\(\s*(?:'([^']+)'|([A-Z0-9_]+)),\s*'([A-Za-z]+)'/g,
      )) {
        const apiVersion = m[2] ?? CONSTS[m[3]!];
        if (!apiVersion) continue;
        const info = resourceForKind(apiVersion, m[4]!);
        assert.ok(info, `${daemon}: unknown kind ${apiVersion} ${m[4]}`);
        const verb = m[1] === 'getOrUndefined' ? 'get' : m[1]!;
        out.push({ verb, group: groupOf(apiVersion), resource: info.plural });
      }
      // watch specs and objects built: { apiVersion: 'v1', kind: 'Service' } needs at least get
      for (const m of text.matchAll(/apiVersion: '([^']+)',\s*kind: '([A-Za-z]+)'/g)) {
        const info = resourceForKind(m[1]!, m[2]!);
        if (info) out.push({ verb: 'get', group: info.group, resource: info.plural });
      }
    }
    return out;
  }

  for (const daemon of Object.keys(DAEMON_DIRS)) {
    it(`${daemon}: every watch and literal call in its code is allowed by its ClusterRole`, () => {
      const reqs = requests(daemon);
      assert.ok(reqs.length >= 3, `${daemon}: found ${reqs.length} requests`);
      for (const r of reqs)
        assert.ok(
          rulesAllow(DAEMON_RULES[daemon]!, r),
          `${daemon} may not ${r.verb} ${r.group || 'core'}/${r.resource}: add it to DAEMON_RULES`,
        );
    });
  }
});
