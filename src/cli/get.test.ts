import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../k8s/objects.js';
import { resolveResourceName } from '../k8s/resources.js';
import { formatGet, parseCustomColumnsFile, parseOutput } from './get-format.js';

const now = Date.parse('2026-01-01T00:10:00Z');
const t0 = '2026-01-01T00:09:00Z';
const deploy: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'echo-service-c1', namespace: 'default', creationTimestamp: t0 },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'e' } },
    template: { spec: { containers: [{ name: 'echo', image: 'mendhak/http-https-echo:28' }] } },
  },
  status: { readyReplicas: 1, updatedReplicas: 1, availableReplicas: 1 },
};
const svc = (name: string, ip: string, port: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', creationTimestamp: t0 },
  spec: {
    type: 'ClusterIP',
    clusterIP: ip,
    ports: [{ port: Number(port.split('/')[0]), protocol: 'TCP' }],
  },
});
const slice: KubeObject = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'echo-service-c1-t9n6d', namespace: 'default', creationTimestamp: t0 },
  addressType: 'IPv4',
  ports: [{ port: 8080 }],
  endpoints: [{ addresses: ['10.244.1.10'] }],
};

describe('get tables', () => {
  it('prints deploy,svc,endpointslices like kubectl', () => {
    const text = formatGet(
      [
        { info: resolveResourceName('deploy'), objects: [deploy] },
        {
          info: resolveResourceName('svc'),
          objects: [
            svc('echo-service-c1', '10.96.123.45', '80/TCP'),
            svc('kubernetes', '10.96.0.1', '443/TCP'),
          ],
        },
        { info: resolveResourceName('endpointslices'), objects: [slice] },
      ],
      { multi: true, now },
    );
    assert.equal(
      text,
      [
        'NAME                              READY   UP-TO-DATE   AVAILABLE   AGE',
        'deployment.apps/echo-service-c1   1/1     1            1           60s',
        '',
        'NAME                      TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE',
        'service/echo-service-c1   ClusterIP   10.96.123.45   <none>        80/TCP    60s',
        'service/kubernetes        ClusterIP   10.96.0.1      <none>        443/TCP   60s',
        '',
        'NAME                                                   ADDRESSTYPE   PORTS   ENDPOINTS     AGE',
        'endpointslice.discovery.k8s.io/echo-service-c1-t9n6d   IPv4          8080    10.244.1.10   60s',
        '',
      ].join('\n'),
    );
  });
  it('adds NAMESPACE with -A, wide columns with -o wide, names with -o name', () => {
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'kube-system', creationTimestamp: t0 },
      spec: { nodeName: 'c1-worker', containers: [{}] },
      status: {
        phase: 'Running',
        podIP: '10.244.1.2',
        containerStatuses: [{ ready: true, restartCount: 2 }],
      },
    };
    const info = resolveResourceName('po');
    assert.equal(
      formatGet([{ info, objects: [pod] }], { multi: false, allNamespaces: true, now }),
      'NAMESPACE     NAME   READY   STATUS    RESTARTS   AGE\nkube-system   p      1/1     Running   2          60s\n',
    );
    assert.match(
      formatGet([{ info, objects: [pod] }], { multi: false, output: 'wide', now }),
      /IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\n.*10\.244\.1\.2\s+c1-worker/,
    );
    assert.equal(
      formatGet([{ info, objects: [pod] }], { multi: false, output: 'name', now }),
      'pod/p\n',
    );
    const one = (output: string, singleItem: boolean) =>
      formatGet([{ info, objects: [pod] }], { multi: false, output, singleItem, now });
    // asked by name: the object; listed (even with one result): a List, as kubectl.
    assert.equal(JSON.parse(one('json', true)).metadata.name, 'p');
    const list = JSON.parse(one('json', false));
    assert.equal(list.kind, 'List');
    assert.equal(list.apiVersion, 'v1');
    assert.deepEqual(
      list.items.map((o: KubeObject) => o.metadata.name),
      ['p'],
    );
    assert.match(one('yaml', false), /^apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n/);
    assert.match(one('yaml', true), /^apiVersion: v1\nkind: Pod\n/);
    // go-yaml's quoting: strings that read back as other types double-quoted
    assert.match(one('yaml', true), /creationTimestamp: "2026-01-01T00:09:00Z"\n/);
    // kubectl's JSON: keys sorted, 4-space indent
    assert.match(one('json', false), /^\{\n {4}"apiVersion": "v1",\n {4}"items": \[\n/);
    assert.throws(
      () => formatGet([{ info, objects: [pod] }], { multi: false, output: 'xml' }),
      /unable to match a printer suitable for the output format "xml"/,
    );
  });
  it('resolves plural, singular, short and kind.group names', () => {
    for (const [n, kind] of [
      ['deploy', 'Deployment'],
      ['deployments.apps', 'Deployment'],
      ['deployment.v1.apps', 'Deployment'],
      ['svc', 'Service'],
      ['endpointslice', 'EndpointSlice'],
      ['endpointslices.discovery.k8s.io', 'EndpointSlice'],
      ['cnp', 'CiliumNetworkPolicy'],
      ['ServiceImport', 'ServiceImport'],
    ] as const) {
      assert.equal(resolveResourceName(n).kind, kind, n);
    }
    assert.throws(
      () => resolveResourceName('replicationcontrollers'),
      /the server doesn't have a resource type "replicationcontrollers"/,
    );
  });
  describe('kubectl output formats', () => {
    const info = resolveResourceName('po');
    const mk = (name: string, rv: string, images: string[]): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default', resourceVersion: rv, labels: { app: name } },
      spec: { containers: images.map((image) => ({ name: 'c', image })) },
    });
    const pods = [mk('web-10', '7', ['nginx']), mk('web-9', '11', ['a', 'b']), mk('db', '9', [])];
    const fmt = (o: Partial<Parameters<typeof formatGet>[1]>) =>
      formatGet([{ info, objects: pods }], { multi: false, now, ...o });
    it('-o jsonpath runs on the List (even of one object), -o jsonpath on one name on the object', () => {
      assert.equal(
        fmt({ output: 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}' }),
        'web-10\nweb-9\ndb\n',
      );
      assert.equal(
        formatGet([{ info, objects: [pods[0]!] }], {
          multi: false,
          output: 'jsonpath={.kind}',
        }),
        'List',
      );
      assert.equal(
        formatGet([{ info, objects: [pods[0]!] }], {
          multi: false,
          singleItem: true,
          output: 'jsonpath={.kind}',
        }),
        'Pod',
      );
      assert.equal(fmt({ output: 'jsonpath={.items[0].nope}' }), '');
      assert.throws(
        () => fmt({ output: 'jsonpath={.items[0].nope}', allowMissingTemplateKeys: false }),
        /error executing jsonpath "\{\.items\[0\]\.nope\}": Error executing template: nope is not found/,
      );
    });
    it('-o custom-columns prints kubectl cells: values joined by commas, <none> when empty', () => {
      assert.equal(
        fmt({
          output:
            'custom-columns=NAME:.metadata.name,IMAGES:.spec.containers[*].image,L:metadata.labels',
        }),
        [
          'NAME     IMAGES   L',
          'web-10   nginx    map[app:web-10]',
          'web-9    a,b      map[app:web-9]',
          'db       <none>   map[app:db]',
          '',
        ].join('\n'),
      );
      assert.equal(
        fmt({ output: 'custom-columns=N:{.metadata.name}', noHeaders: true }),
        'web-10\nweb-9\ndb\n',
      );
      const cols = parseCustomColumnsFile(
        'NAME   RV\n.metadata.name   .metadata.resourceVersion\n',
      );
      assert.deepEqual(
        cols.map((c) => c.header),
        ['NAME', 'RV'],
      );
      assert.throws(
        () => parseOutput('custom-columns=NAME'),
        /unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>/,
      );
      assert.throws(() => parseOutput('custom-columns='), /no custom columns given/);
      assert.throws(() => parseOutput('jsonpath='), /no template given/);
      assert.throws(
        () => parseOutput('jsonpath={.a'),
        /error parsing jsonpath \{\.a, unclosed action/,
      );
      assert.equal(parseOutput('jsonpath-file=/t', () => '{.kind}').type, 'jsonpath');
    });
    it('--sort-by orders tables, names and Lists as kubectl 1.32 (quantities, else byte order)', () => {
      assert.equal(
        fmt({ output: 'name', sortBy: '.metadata.name' }),
        'pod/db\npod/web-10\npod/web-9\n',
      );
      assert.equal(
        fmt({ output: 'name', sortBy: '{.metadata.resourceVersion}' }),
        'pod/web-10\npod/db\npod/web-9\n',
      );
      assert.deepEqual(
        JSON.parse(fmt({ output: 'json', sortBy: 'metadata.name' })).items.map(
          (o: KubeObject) => o.metadata.name,
        ),
        ['db', 'web-10', 'web-9'],
      );
      assert.match(
        fmt({ sortBy: '.spec.containers[*].image' }),
        /^NAME\s.*\ndb\s.*\nweb-9\s.*\nweb-10\s/,
      );
      assert.throws(
        () => fmt({ output: 'name', sortBy: '.nope' }),
        /couldn't find any field with path "\{\.nope\}" in the list of objects/,
      );
    });
  });
});
