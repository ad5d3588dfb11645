/**
 * fast-check arbitraries for the lab API server's REST surface: Kubernetes-shaped
 * objects with hostile leaves, request paths, query strings (list and watch
 * parameters), patches of the three kinds and multi-document YAML manifests.
 * Shared by the fuzz test (src/lab/apiserver/fuzz.test.ts) and the fuzz
 * benchmark (bench/fuzz).
 */
import fc from 'fast-check';
import { stringify } from 'yaml';

/** JSON values shaped like Kubernetes objects, with hostile leaves. */
export const objectArb = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom('default', '', '10.0.0.1', '0.0.0.0/0', '-1', '1e400', '__proto__'),
  ),
  value: fc.oneof(
    { depthSize: 'small' },
    tie('leaf'),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(fc.string(), fc.constantFrom('metadata', 'spec', 'status', 'name', 'labels')),
      tie('value'),
      { maxKeys: 5 },
    ),
  ),
  object: fc.record(
    {
      apiVersion: fc.oneof(fc.constant('v1'), fc.constant('apps/v1'), fc.string()),
      kind: fc.constantFrom('Pod', 'Service', 'Namespace', 'Node', 'Deployment', 'ConfigMap', 'X'),
      metadata: fc.oneof(
        fc.record(
          {
            name: fc.oneof(fc.constantFrom('a', 'b-1'), fc.string(), tie('value')),
            namespace: fc.oneof(fc.constant('default'), tie('value')),
            labels: tie('value'),
            annotations: tie('value'),
            resourceVersion: fc.oneof(fc.string(), fc.integer().map(String)),
          },
          { requiredKeys: [] },
        ),
        tie('value'),
      ),
      spec: tie('value'),
      status: tie('value'),
      data: tie('value'),
    },
    { requiredKeys: [] },
  ),
}));

/** Paths of resources the fuzzers address (collections, objects, subresources). */
export const fuzzPaths = [
  '/api/v1/namespaces/default/pods',
  '/api/v1/namespaces/default/pods/a',
  '/api/v1/namespaces/default/pods/a/status',
  '/api/v1/namespaces/default/services',
  '/api/v1/namespaces/default/services/a',
  '/api/v1/namespaces/default/configmaps',
  '/api/v1/namespaces/default/configmaps/a',
  '/api/v1/nodes',
  '/api/v1/nodes/a/status',
  '/api/v1/namespaces',
  '/apis/apps/v1/namespaces/default/deployments',
  '/apis/apps/v1/namespaces/default/deployments/a/scale',
];

/** A known path, or one with a hostile last segment (bad %-escapes, dots, long names). */
export const pathArb = fc.oneof(
  fc.constantFrom(...fuzzPaths),
  fc
    .tuple(
      fc.constantFrom(...fuzzPaths),
      fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.constantFrom('%', '%E0%A4%A', '%zz', '..', '%00', 'a'.repeat(300)),
      ),
    )
    .map(([p, seg]) => `${p}/${seg.replace(/[?#\s]/g, '')}`),
);

/** Hostile values of query parameters: selectors, numbers out of range, broken syntax. */
export const queryValueArb = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer().map(String),
  fc.constantFrom(
    '-1',
    '0',
    '1e400',
    'NaN',
    '',
    'a in (b',
    'a=b,,',
    'metadata.name==a',
    'metadata.name!=a,metadata.namespace=default',
    'a notin (b,c),!d,e',
    'x'.repeat(2000),
    ',='.repeat(500),
    'All',
    'true',
    '99999999999999999999',
  ),
);

/** Query strings of list, delete and watch parameters (without `watch` itself). */
export const queryArb = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'limit',
        'timeoutSeconds',
        'resourceVersion',
        'labelSelector',
        'fieldSelector',
        'gracePeriodSeconds',
        'propagationPolicy',
        'dryRun',
        'resourceVersionMatch',
        'includeObject',
        'continue',
        'allowWatchBookmarks',
        'sendInitialEvents',
        'pretty',
      ),
      queryValueArb,
    ),
    { maxLength: 4 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'));

/** A watch request's query: `watch` (true, 1 or junk) plus watch parameters. */
export const watchQueryArb = fc
  .tuple(fc.constantFrom('true', '1', 'yes', ''), queryArb, fc.integer({ min: -5, max: 3 }))
  .map(
    ([w, q, t]) =>
      `watch=${w}&timeoutSeconds=${t}${q ? `&${q.replace(/(^|&)timeoutSeconds=[^&]*/g, '')}` : ''}`,
  );

/** RFC 6902 operations, including `copy`/`move` chains that would grow an object. */
const jsonPointerArb = fc.oneof(
  fc.constantFrom(
    '',
    '/',
    '/metadata',
    '/metadata/labels',
    '/metadata/labels/a',
    '/spec',
    '/spec/containers/0',
    '/spec/containers/-',
    '/status',
    '/data',
    '/~0~1',
    '/a/~2',
    '/metadata/name',
    '/metadata/resourceVersion',
  ),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }).map((s) => '/' + s.join('/')),
);
const jsonPatchOpArb = fc.record(
  {
    op: fc.oneof(fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test'), fc.string()),
    path: jsonPointerArb,
    from: jsonPointerArb,
    value: objectArb.value,
  },
  { requiredKeys: ['op'] },
);

/** A patch body and its content type: merge, strategic merge, JSON patch, or junk. */
export const patchArb: fc.Arbitrary<{ contentType: string; body: string }> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('application/merge-patch+json', 'application/strategic-merge-patch+json'),
      fc.oneof(
        objectArb.object.map((o) => JSON.stringify(o)),
        objectArb.value.map((v) => JSON.stringify(v)),
        fc.constantFrom(
          '{"metadata":{"labels":null}}',
          '{"spec":{"$patch":"replace"}}',
          '{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}',
          '{"$setElementOrder/containers":[{"name":"x"}]}',
          '{"spec":{"$retainKeys":["a"]}}',
          '{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}',
        ),
      ),
    )
    .map(([contentType, body]) => ({ contentType, body })),
  fc
    .array(jsonPatchOpArb, { maxLength: 12 })
    .map((ops) => ({ contentType: 'application/json-patch+json', body: JSON.stringify(ops) })),
  // Growth by copy: each op copies the whole metadata into itself.
  fc.integer({ min: 1, max: 40 }).map((n) => ({
    contentType: 'application/json-patch+json',
    body: JSON.stringify(
      Array.from({ length: n }, (_, i) => ({
        op: 'copy',
        from: '/metadata',
        path: `/metadata/annotations/c${i}`,
      })),
    ),
  })),
  fc
    .tuple(
      fc.constantFrom(
        'application/json-patch+json',
        'application/merge-patch+json',
        'application/strategic-merge-patch+json',
        'application/apply-patch+yaml',
        'text/plain',
      ),
      fc.oneof(fc.string(), fc.constantFrom('', 'null', '[]', '{', '"x"', '[null]', '[1,2]')),
    )
    .map(([contentType, body]) => ({ contentType, body })),
);

/** One manifest document: a plausible object or a hostile value. */
const manifestDocArb = fc.oneof(
  fc
    .record({
      kind: fc.constantFrom('ConfigMap', 'Service', 'Pod', 'Namespace', 'Deployment'),
      name: fc.oneof(fc.constantFrom('m-a', 'm-b', 'default'), fc.string({ maxLength: 20 })),
      data: objectArb.value,
    })
    .map(({ kind, name, data }) => ({
      apiVersion: kind === 'Deployment' ? 'apps/v1' : 'v1',
      kind,
      metadata: { name, labels: { fuzz: 'yes' } },
      ...(kind === 'ConfigMap' ? { data } : { spec: data }),
    })),
  objectArb.object,
  objectArb.value,
);

/** Multi-document YAML text: documents joined by `---`, some broken on purpose. */
export const manifestArb = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: manifestDocArb.map((d) => stringify(d)) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('', 'a: [', '- x\n- y', '!!binary xx', '&a [*a]', 'key: @x'),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((docs) => docs.join('\n---\n'));
