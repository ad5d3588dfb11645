// Merging lab-NAME into the user's kubeconfig, as kind does. Every test uses
// files in a temporary directory (never the real ~/.kube/config).
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { setContext } from './kubeconfig.js';
import { exportContext, unexportContext, userKubeconfigPath } from './kubeconfig-export.js';

const dir = mkdtempSync(join(tmpdir(), 'tendril-kubeconfig-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tendrilConfig = join(dir, 'tendril-config');
setContext({ name: 'lab-c1', server: 'http://127.0.0.1:40001' }, tendrilConfig);
setContext({ name: 'lab-c2', server: 'http://127.0.0.1:40002' }, tendrilConfig);

// A kubeconfig someone already has: other clusters, a user with a token,
// preferences, extensions and a field Tendril does not know.
const THEIRS = `apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: QUJD
contexts:
- name: prod
  context:
    cluster: prod
    user: admin
    namespace: shop
- name: lab-c1
  context:
    cluster: stale
    user: stale
users:
- name: admin
  user:
    token: secret-token
current-context: prod
extensions:
- name: x
  extension: {a: 1}
x-unknown: kept
`;

describe('user kubeconfig (lab create / lab delete)', () => {
  it("finds kubectl's file: $KUBECONFIG's first entry, else ~/.kube/config", () => {
    assert.equal(userKubeconfigPath({ KUBECONFIG: '/a/one:/b/two', HOME: '/h' }), '/a/one');
    assert.equal(userKubeconfigPath({ KUBECONFIG: ':/b/two', HOME: '/h' }), '/b/two');
    assert.equal(userKubeconfigPath({ HOME: '/h' }), '/h/.kube/config');
    assert.equal(userKubeconfigPath({ KUBECONFIG: '', HOME: '/h' }), '/h/.kube/config');
  });

  it('creates a missing file with mode 0600 and the context current', () => {
    const file = join(dir, 'new', '.kube', 'config');
    assert.equal(exportContext('lab-c1', { file, from: tendrilConfig }), file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const doc = parse(readFileSync(file, 'utf8'));
    assert.equal(doc['current-context'], 'lab-c1');
    assert.deepEqual(doc.clusters, [
      { name: 'lab-c1', cluster: { server: 'http://127.0.0.1:40001' } },
    ]);
    assert.deepEqual(doc.contexts, [
      { name: 'lab-c1', context: { cluster: 'lab-c1', user: 'lab-c1' } },
    ]);
    assert.deepEqual(doc.users, [{ name: 'lab-c1', user: {} }]);
    assert.ok(!existsSync(`${file}.lock`));
  });

  it('merges into an existing file, keeping every other entry and field and its mode', () => {
    const file = join(dir, 'theirs');
    writeFileSync(file, THEIRS);
    chmodSync(file, 0o640);
    exportContext('lab-c1', { file, from: tendrilConfig });
    exportContext('lab-c2', { file, from: tendrilConfig, makeCurrent: false });
    const before = parse(THEIRS);
    const doc = parse(readFileSync(file, 'utf8'));
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.equal(doc['current-context'], 'lab-c1');
    assert.deepEqual(doc.preferences, before.preferences);
    assert.deepEqual(doc.extensions, before.extensions);
    assert.equal(doc['x-unknown'], 'kept');
    assert.deepEqual(doc.clusters.slice(0, 1), before.clusters);
    assert.deepEqual(doc.users.slice(0, 1), before.users);
    assert.deepEqual(doc.contexts[0], before.contexts[0]);
    // the stale lab-c1 context is replaced in place, lab-c2 appended
    assert.deepEqual(
      doc.contexts.map((c: { name: string; context: { cluster: string } }) => [
        c.name,
        c.context.cluster,
      ]),
      [
        ['prod', 'prod'],
        ['lab-c1', 'lab-c1'],
        ['lab-c2', 'lab-c2'],
      ],
    );
    assert.deepEqual(
      doc.clusters.map((c: { name: string }) => c.name),
      ['prod', 'lab-c1', 'lab-c2'],
    );
  });

  it('removes exactly its entries, and current-context only when it pointed at it', () => {
    const file = join(dir, 'theirs');
    assert.equal(unexportContext('lab-c2', { file }), true);
    let doc = parse(readFileSync(file, 'utf8'));
    assert.equal(doc['current-context'], 'lab-c1', 'another current context stays');
    assert.equal(unexportContext('lab-c1', { file }), true);
    doc = parse(readFileSync(file, 'utf8'));
    assert.equal(doc['current-context'], '');
    const before = parse(THEIRS);
    assert.deepEqual(doc.clusters, before.clusters);
    assert.deepEqual(doc.users, before.users);
    assert.deepEqual(doc.contexts, [before.contexts[0]]);
    assert.deepEqual(doc.extensions, before.extensions);
    assert.equal(doc['x-unknown'], 'kept');
    assert.equal(statSync(file).mode & 0o777, 0o640);
    // absent entry or file: nothing to do
    assert.equal(unexportContext('lab-c1', { file }), false);
    assert.equal(unexportContext('lab-c1', { file: join(dir, 'absent') }), false);
    assert.ok(!existsSync(join(dir, 'absent')));
  });

  it('keeps a cluster or user another context still uses', () => {
    const file = join(dir, 'shared');
    writeFileSync(
      file,
      'contexts:\n- name: lab-c1\n  context: {cluster: lab-c1, user: lab-c1}\n- name: mine\n  context: {cluster: lab-c1, user: me}\nclusters:\n- name: lab-c1\n  cluster: {server: http://x}\nusers:\n- name: lab-c1\n  user: {}\n',
    );
    unexportContext('lab-c1', { file });
    const doc = parse(readFileSync(file, 'utf8'));
    assert.deepEqual(doc.clusters, [{ name: 'lab-c1', cluster: { server: 'http://x' } }]);
    assert.deepEqual(doc.users, []);
  });

  it('writes through a symlinked kubeconfig and refuses a broken one without touching it', () => {
    const target = join(dir, 'real-config');
    writeFileSync(target, 'apiVersion: v1\nkind: Config\n');
    const link = join(dir, 'link-config');
    symlinkSync(target, link);
    exportContext('lab-c2', { file: link, from: tendrilConfig });
    assert.equal(parse(readFileSync(target, 'utf8'))['current-context'], 'lab-c2');
    const bad = join(dir, 'bad');
    writeFileSync(bad, 'clusters: [unclosed\n');
    assert.throws(
      () => exportContext('lab-c1', { file: bad, from: tendrilConfig }),
      (e: unknown) => (e as { code?: string }).code === 'KUBECONFIG_INVALID',
    );
    assert.equal(readFileSync(bad, 'utf8'), 'clusters: [unclosed\n');
    writeFileSync(bad, 'clusters: {a: 1}\n');
    assert.throws(
      () => exportContext('lab-c1', { file: bad, from: tendrilConfig }),
      /"clusters" is not a list/,
    );
    assert.throws(
      () => exportContext('lab-none', { file: join(dir, 'x'), from: tendrilConfig }),
      /context "lab-none" does not exist/,
    );
  });
});
