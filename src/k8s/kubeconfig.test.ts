import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  currentContext,
  listContexts,
  removeContext,
  resolveContext,
  setContext,
  useContext,
  writeStandaloneKubeConfig,
} from './kubeconfig.js';
import { clientOptionsFromKubeconfig } from './client-config.js';

describe("Tendril's kubeconfig-style config", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-kubeconfig-test-'));
  const path = join(dir, 'config');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('records an https context with the CA and a token, which the client loader reads back', () => {
    const p2 = join(dir, 'config-https');
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    setContext({ name: 'lab-s', server: 'https://127.0.0.1:3333', caPEM: ca, token: 'T0k' }, p2);
    const doc = parse(readFileSync(p2, 'utf8'));
    assert.equal(
      Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(),
      ca,
    );
    assert.deepEqual(doc.users[0].user, { token: 'T0k' });
    const o = clientOptionsFromKubeconfig(doc, { path: p2, context: 'lab-s' });
    assert.equal(o.server, 'https://127.0.0.1:3333');
    assert.equal(o.token, 'T0k');
    assert.equal(o.tls?.ca, ca);
  });

  it('adds, resolves, switches and removes contexts', () => {
    setContext({ name: 'lab-c1', cluster: 'c1', server: 'http://127.0.0.1:1111' }, path);
    setContext(
      { name: 'lab-c2', cluster: 'c2', server: 'http://127.0.0.1:2222', namespace: 'kube-system' },
      path,
    );
    assert.equal(currentContext(path), 'lab-c2');
    assert.deepEqual(resolveContext(undefined, path), {
      contextName: 'lab-c2',
      clusterName: 'c2',
      server: 'http://127.0.0.1:2222',
      namespace: 'kube-system',
    });
    assert.deepEqual(resolveContext('lab-c1', path), {
      contextName: 'lab-c1',
      clusterName: 'c1',
      server: 'http://127.0.0.1:1111',
      namespace: 'default',
    });
    useContext('lab-c1', path);
    assert.deepEqual(
      listContexts(path).map((c) => [c.name, c.current]),
      [
        ['lab-c1', true],
        ['lab-c2', false],
      ],
    );
    assert.throws(
      () => resolveContext('kind-c9', path),
      (e: Error & { hint?: string }) =>
        /context "kind-c9" does not exist/.test(e.message) &&
        /known contexts: lab-c1, lab-c2/.test(e.hint ?? ''),
    );
    assert.throws(() => useContext('nope', path), /does not exist/);
    removeContext('lab-c1', path);
    assert.equal(currentContext(path), undefined);
    assert.deepEqual(
      listContexts(path).map((c) => c.name),
      ['lab-c2'],
    );
    const doc = parse(readFileSync(path, 'utf8'));
    assert.deepEqual(
      doc.clusters.map((c: { name: string }) => c.name),
      ['c2'],
    );
  });
  it('writes a standalone kubeconfig in kubectl format', () => {
    const out = join(dir, 'kubeconfig');
    writeStandaloneKubeConfig(out, { contexts: ['lab-c2'] }, path);
    const doc = parse(readFileSync(out, 'utf8'));
    assert.equal(doc.apiVersion, 'v1');
    assert.equal(doc.kind, 'Config');
    assert.equal(doc['current-context'], 'lab-c2');
    assert.deepEqual(doc.clusters, [{ name: 'c2', cluster: { server: 'http://127.0.0.1:2222' } }]);
    assert.deepEqual(doc.users, [{ name: 'lab-c2', user: {} }]);
  });
});
