// kubectl's JSONPath dialect. Expected outputs were taken from real kubectl
// 1.32 (`kubectl get pods -o jsonpath=...`) on the same objects.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  goJSON,
  goSprint,
  JsonPathExecError,
  JsonPathParseError,
  parseJsonPath,
  parseQuantity,
  relaxedJsonPath,
  sortLess,
} from './jsonpath.js';

const pod = (name: string, app: string, images: string[]) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app, 'app.kubernetes.io/name': app } },
  spec: {
    containers: images.map((image, i) => ({ name: `c${i}`, image })),
    terminationGracePeriodSeconds: 30,
  },
  status: { phase: 'Pending', ready: name !== 'db' },
});
const list = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    pod('db', 'db', ['busybox', 'nginx']),
    pod('web-a', 'web', ['busybox', 'nginx']),
    pod('web-b', 'web', ['busybox']),
  ],
  metadata: { resourceVersion: '' },
};
const run = (t: string, data: unknown = list, allowMissingKeys?: boolean) =>
  parseJsonPath(t).execute(data, { allowMissingKeys });

describe('jsonpath (kubectl dialect)', () => {
  it('selects fields, wildcards and joins values with a space', () => {
    assert.equal(run('{.items[*].metadata.name}'), 'db web-a web-b');
    assert.equal(run('{.kind}'), 'List');
    assert.equal(run('{$.kind}'), 'List');
    assert.equal(run('{.items[0].spec.terminationGracePeriodSeconds}'), '30');
    assert.equal(run('{.items[1].status.ready}'), 'true');
    assert.equal(
      run('{.items[0].spec.*}'),
      '[{"image":"busybox","name":"c0"},{"image":"nginx","name":"c1"}] 30',
    );
    assert.equal(run('{.items[*].spec.containers[0].name}'), 'c0 c0 c0');
  });
  it('prints text outside braces as is, and string literals', () => {
    assert.equal(run('name: {.items[0].metadata.name}!'), 'name: db!');
    assert.equal(run('{.items[0].metadata.name}{"\\t"}{.kind}{"\\n"}'), 'db\tList\n');
    assert.equal(run("{'x'}"), 'x');
    assert.equal(run('.metadata.name'), '.metadata.name');
  });
  it('prints maps and lists as compact JSON with sorted keys', () => {
    assert.equal(run('{.items[0].metadata.labels}'), '{"app":"db","app.kubernetes.io/name":"db"}');
    assert.equal(run('{.items[2].spec.containers[*]}'), '{"image":"busybox","name":"c0"}');
    assert.equal(goJSON({ b: '<a&b>', a: [1] }), '{"a":[1],"b":"\\u003ca\\u0026b\\u003e"}');
  });
  it('indexes, slices and unions arrays', () => {
    assert.equal(run('{.items[-1].metadata.name}'), 'web-b');
    assert.equal(run('{.items[-1:].metadata.name} {.items[0:2].metadata.name}'), 'web-b db web-a');
    assert.equal(run('{.items[::2].metadata.name}'), 'db web-b');
    assert.equal(run('{.items[0,2].metadata.name}'), 'db web-b');
    assert.equal(run("{.items[0]['kind']}"), 'Pod');
    assert.equal(run('{.items[1:1].metadata.name}'), '');
    assert.throws(
      () => run('{.items[5]}'),
      (e: unknown) =>
        e instanceof JsonPathExecError &&
        e.message ===
          'error executing jsonpath "{.items[5]}": Error executing template: array index out of bounds: index 5, length 3',
    );
    assert.throws(() => run('{.kind[0]}'), /string is not array or slice/);
  });
  it('filters with ==, !=, <, >, and existence', () => {
    assert.equal(run('{.items[?(@.metadata.name=="db")].metadata.labels.app}'), 'db');
    assert.equal(run("{.items[?(@.metadata.labels.app!='db')].metadata.name}"), 'web-a web-b');
    assert.equal(run('{.items[?(@.status.ready)].metadata.name}'), 'db web-a web-b');
    assert.equal(run('{.items[?(@.status.ready==true)].metadata.name}'), 'web-a web-b');
    assert.equal(
      run('{.items[?(@.spec.terminationGracePeriodSeconds > 10)].metadata.name}'),
      'db web-a web-b',
    );
    assert.equal(run('{.items[?(@.spec.terminationGracePeriodSeconds<30)].metadata.name}'), '');
    assert.equal(run('{.items[*].spec.containers[?(@.image=="nginx")].name}'), 'c1 c1');
  });
  it('reads escaped dots in field names', () => {
    assert.equal(run('{.items[0].metadata.labels.app\\.kubernetes\\.io/name}'), 'db');
  });
  it('descends recursively with ..', () => {
    assert.equal(run('{..image}'), 'busybox nginx busybox nginx busybox');
    assert.equal(run('{.items[0]..name}'), 'db c0 c1');
  });
  it('repeats {range}...{end} for each value, nested too', () => {
    assert.equal(
      run('{range .items[*]}{.metadata.name}{"\\t"}{.spec.containers[*].image}{"\\n"}{end}'),
      'db\tbusybox nginx\nweb-a\tbusybox nginx\nweb-b\tbusybox\n',
    );
    assert.equal(
      run('{range .items[*]}[{.metadata.name}:{range .spec.containers[*]} {.name}{end}]{end}!'),
      '[db: c0 c1][web-a: c0 c1][web-b: c0]!',
    );
    assert.equal(run('{range .items[?(@.metadata.name=="none")]}x{end}'), '');
    assert.throws(() => run('{.kind}{end}'), /not in range, nothing to end/);
  });
  it('ignores missing keys unless told not to, as kubectl get', () => {
    assert.equal(run('{.nope}'), '');
    assert.equal(run('{.items[*].metadata.nope}'), '');
    assert.throws(
      () => run('{.items[*].metadata.nope}', list, false),
      (e: unknown) =>
        e instanceof JsonPathExecError &&
        /Error executing template: nope is not found$/.test(e.message),
    );
    // found in one object is enough
    assert.equal(run('{.items[*].x}', { items: [{ y: 1 }, { x: 2 }] }, false), '2');
  });
  it('refuses bad templates with kubectl parse errors', () => {
    for (const [t, msg] of [
      ['{.items[*].metadata.name', 'unclosed action'],
      ['{.items[x]}', 'invalid array index x'],
      ['{.items[?(@.a=="b"}', 'unterminated filter'],
      ['{#}', "unrecognized character in action: U+0023 '#'"],
      ['{"abc}', 'unterminated quoted string'],
    ])
      assert.throws(
        () => parseJsonPath(t!),
        (e: unknown) =>
          e instanceof JsonPathParseError && e.message === `error parsing jsonpath ${t}, ${msg}`,
        t,
      );
    assert.throws(() => run('{foo}'), /unrecognized identifier foo/);
  });
  it('relaxes --sort-by and custom-columns paths', () => {
    for (const p of ['.a.b', 'a.b', '{.a.b}', '{a.b}']) assert.equal(relaxedJsonPath(p), '{.a.b}');
    assert.throws(() => relaxedJsonPath('{.a}{.b}'), /unexpected path string/);
  });
  it("prints custom-columns cells as Go's fmt.Sprint", () => {
    assert.equal(goSprint({ b: 'x', a: { c: 1 } }), 'map[a:map[c:1] b:x]');
    assert.equal(goSprint(['a', 2, true, null]), '[a 2 true <nil>]');
    assert.equal(goSprint(1e21), '1e+21');
  });
  it('orders --sort-by values as kubectl', () => {
    // kubectl 1.32: strings in byte order, unless both are quantities
    assert.ok(sortLess('w10', 'w2'));
    assert.ok(sortLess('a01b', 'a1b'));
    assert.ok(sortLess('7', '11'));
    assert.equal(parseQuantity('100m'), 0.1);
    assert.equal(parseQuantity('1Gi'), 2 ** 30);
    assert.equal(parseQuantity('web'), undefined);
    assert.ok(sortLess('500m', '1'));
    assert.ok(sortLess(2, 10));
    assert.ok(sortLess(false, true));
    assert.ok(sortLess(null, 'a'));
    assert.ok(sortLess('2026-01-01T00:00:09Z', '2026-01-01T00:00:10Z'));
  });
});
