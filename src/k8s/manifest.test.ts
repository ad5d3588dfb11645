import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ManifestError, parseManifest } from './manifest.js';

const seed = (n: 1 | 2) =>
  readFileSync(new URL(`../../examples/seed-walkthrough/echo-c${n}.yaml`, import.meta.url), 'utf8');

describe('manifest parsing', () => {
  it("parses the seed's manifests unchanged", () => {
    for (const n of [1, 2] as const) {
      const objs = parseManifest(seed(n), `echo-c${n}.yaml`);
      assert.deepEqual(
        objs.map((o) => o.object.kind),
        ['Deployment', 'Service', 'EndpointSlice'],
      );
      const slice = objs[2]!.object;
      assert.deepEqual(slice.endpoints, []);
      assert.equal(slice.metadata.labels!['cilium.io/global-service'], 'true');
      assert.equal(objs[0]!.info.group, 'apps');
    }
  });
  it('skips empty documents and expands kind: List', () => {
    const text = `---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: tendril-a}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: tendril-b}\n---\n`;
    assert.deepEqual(
      parseManifest(text).map((o) => o.object.metadata.name),
      ['tendril-a', 'tendril-b'],
    );
  });
  it('refuses the whole file when one document is invalid, naming every problem', () => {
    const bad =
      seed(1) +
      `---\napiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 0\n---\napiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: x\n`;
    assert.throws(
      () => parseManifest(bad, 'bad.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ManifestError);
        assert.equal(e.problems.length, 2);
        assert.equal(e.problems[0]!.document, 4);
        assert.equal(e.problems[0]!.status.reason, 'Invalid');
        assert.match(e.message, /nothing was applied/);
        assert.match(
          e.message,
          /document 4 \(line \d+\): Service "broken" is invalid: spec.ports\[0\].port: Invalid value: 0/,
        );
        assert.match(
          e.message,
          /document 5 \(line \d+\): no matches for kind "ReplicationController" in version "v1"/,
        );
        return true;
      },
    );
  });
  it('reports malformed YAML with its line', () => {
    assert.throws(
      () => parseManifest('apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n', 'm.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ManifestError);
        assert.equal(e.problems[0]!.status.reason, 'BadRequest');
        assert.match(e.problems[0]!.status.message, /error parsing m.yaml: yaml: line \d+/);
        return true;
      },
    );
  });
  it('reports missing required fields naming the field', () => {
    assert.throws(
      () =>
        parseManifest(
          'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 1\n',
        ),
      /spec.selector: Required value/,
    );
  });
  it('refuses unknown top-level and metadata fields (typos)', () => {
    assert.throws(
      () =>
        parseManifest(
          'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tendril-x\n  lables:\n    a: b\nspce: {}\n',
        ),
      (e: unknown) => {
        assert.ok(e instanceof ManifestError);
        assert.match(e.message, /spce: Invalid value: "spce": unknown field "spce"/);
        assert.match(
          e.message,
          /metadata.lables: Invalid value: "lables": unknown field "metadata.lables"/,
        );
        return true;
      },
    );
  });
});
