/**
 * Batched node routes (issue 14): NodeRouter.apply programs thousands of
 * routes through a few `ip -force -batch -` processes; a route the kernel
 * refuses or a malformed one fails alone; deletes remove what was added; in
 * tunnel mode the FDB entries and neighbours come and go with the routes. And
 * batchLines isolates a line iproute2 cannot parse (which ends its process)
 * without losing the lines around it. Each test works in a network namespace
 * of its own, removed at the end.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { uniqueName } from '../bpf/testing.js';
import { batchLines } from './ip.js';
import { NodeRouter, ROUTE_PROTO, VXLAN_DEV, routeMetric, vtepMac } from './routes.js';
import type { NodeRoute } from '../types.js';

const NODE_IP = '172.31.0.1';

/** A netns whose veth end holds NODE_IP/16 (the underlay); removed by the returned function. */
function makeNetns(): { name: string; path: string; remove: () => void } {
  const name = uniqueName('rt');
  execFileSync('ip', ['netns', 'add', name]);
  try {
    execFileSync('ip', ['-n', name, '-batch', '-'], {
      input: [
        'link set lo up',
        'link add u0 type veth peer name u1',
        `addr add ${NODE_IP}/16 dev u0`,
        'link set u0 up',
        'link set u1 up',
      ].join('\n'),
    });
  } catch (err) {
    execFileSync('ip', ['netns', 'del', name]);
    throw err;
  }
  return {
    name,
    path: `/run/netns/${name}`,
    remove: () => execFileSync('ip', ['netns', 'del', name]),
  };
}

/** The routes of Tendril's protocol in netns NS, as `ip -j route show` lists them. */
const kernelRoutes = (ns: string): Array<{ dst: string; gateway?: string; metric?: number }> =>
  JSON.parse(
    execFileSync('ip', ['-n', ns, '-j', 'route', 'show', 'proto', String(ROUTE_PROTO)], {
      encoding: 'utf8',
    }) || '[]',
  ) as Array<{ dst: string; gateway?: string; metric?: number }>;

/** Those routes as destination -> gateway. */
const routesIn = (ns: string): Map<string, string> =>
  new Map(kernelRoutes(ns).map((r) => [r.dst, r.gateway ?? '']));

/** The FDB of the VXLAN device in netns NS, as `bridge fdb show` prints it. */
const fdbIn = (ns: string): string =>
  execFileSync('bridge', ['-n', ns, 'fdb', 'show', 'dev', VXLAN_DEV], { encoding: 'utf8' });

/** A NodeRouter of MODE for node NODE_IP (pod CIDR 10.99.0.0/24) in the netns at NSPATH, initialised. */
async function startRouter(mode: 'native' | 'tunnel', nsPath: string): Promise<NodeRouter> {
  const router = new NodeRouter({
    mode,
    nodeIP: NODE_IP,
    podCIDR: '10.99.0.0/24',
    mtu: 1500,
    netns: nsPath,
  });
  await router.init();
  return router;
}

/** Remote node i: pod CIDR 10.(100 + i/256).(i%256).0/24 via 172.31.(1 + i/250).(1 + i%250). */
const route = (i: number): NodeRoute => ({
  podCIDR: `10.${100 + (i >> 8)}.${i & 255}.0/24`,
  nodeIP: `172.31.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`,
  clusterId: 2,
});

privilegedTest(
  'privileged: native routes in batches: 5,000 present, bad ones fail alone, deletes remove them',
  async () => {
    const ns = makeNetns();
    try {
      const router = await startRouter('native', ns.path);
      const good = Array.from({ length: 5000 }, (_, i) => route(i));
      const unreachable = { podCIDR: '10.98.1.0/24', nodeIP: '192.0.2.7', clusterId: 2 };
      const malformed = { podCIDR: '10.98.2.0/33', nodeIP: '172.31.9.9', clusterId: 2 };
      const badNode = { podCIDR: '10.98.3.0/24', nodeIP: '172.31.300.1', clusterId: 2 };
      const t0 = performance.now();
      const errors = await router.apply({
        // the bad ones in the middle: what follows them must still be applied
        upserts: [...good.slice(0, 2500), unreachable, malformed, badNode, ...good.slice(2500)],
        deletes: [],
      });
      const ms = performance.now() - t0;
      console.log(`# 5,003 routes applied in ${ms.toFixed(0)} ms`);
      assert.deepEqual([...errors.keys()].sort(), [
        unreachable.podCIDR,
        malformed.podCIDR,
        badNode.podCIDR,
      ]);
      assert.match(
        errors.get(unreachable.podCIDR)!.message,
        /route replace 10\.98\.1\.0\/24.*gateway/i,
      );
      assert.match(errors.get(malformed.podCIDR)!.message, /10\.98\.2\.0\/33.*malformed/);
      assert.match(errors.get(badNode.podCIDR)!.message, /172\.31\.300\.1/);
      let have = routesIn(ns.name);
      assert.equal(have.size, 5000, 'every good route is in the kernel, no bad one');
      for (const r of good) assert.equal(have.get(r.podCIDR), r.nodeIP, r.podCIDR);
      // the point of batching: not a process per route (~25 ms each would be > 100 s)
      assert.ok(ms < 60_000, `5,000 routes took ${ms.toFixed(0)} ms`);

      // a changed gateway, 2,000 deletes (one of a route that is not there: no error)
      const moved = { ...good[0]!, nodeIP: '172.31.200.200' };
      const gone = [
        ...good.slice(3000),
        { podCIDR: '10.98.4.0/24', nodeIP: NODE_IP, clusterId: 2 },
      ];
      assert.deepEqual(await router.apply({ upserts: [moved], deletes: gone }), new Map());
      have = routesIn(ns.name);
      assert.equal(have.size, 3000);
      assert.equal(have.get(moved.podCIDR), '172.31.200.200');
      assert.ok(!have.has(good[4999]!.podCIDR));
      // what list() adopts after a restart is what apply() wrote
      assert.equal((await router.list()).length, 3000);
    } finally {
      ns.remove();
    }
  },
);

privilegedTest(
  'privileged: tunnel routes in batches bring and remove their FDB entries and neighbours',
  async () => {
    const ns = makeNetns();
    try {
      const router = await startRouter('tunnel', ns.path);
      const rs = Array.from({ length: 300 }, (_, i) => route(i));
      assert.deepEqual(await router.apply({ upserts: rs, deletes: [] }), new Map());
      const have = routesIn(ns.name);
      assert.equal(have.size, 300);
      assert.equal(have.get(rs[7]!.podCIDR), rs[7]!.podCIDR.replace('/24', ''));
      const fdb = fdbIn(ns.name);
      assert.match(
        fdb,
        new RegExp(`${vtepMac(rs[7]!.nodeIP)} dst ${rs[7]!.nodeIP.replace(/\./g, '\\.')}`),
      );
      const neigh = () =>
        execFileSync('ip', ['-n', ns.name, 'neigh', 'show', 'dev', VXLAN_DEV, 'nud', 'permanent'], {
          encoding: 'utf8',
        })
          .trim()
          .split('\n')
          .filter(Boolean).length;
      assert.equal(neigh(), 300);
      const listed = await router.list();
      assert.equal(listed.find((r) => r.podCIDR === rs[7]!.podCIDR)?.nodeIP, rs[7]!.nodeIP);

      assert.deepEqual(await router.apply({ upserts: [], deletes: rs.slice(100) }), new Map());
      assert.equal(routesIn(ns.name).size, 100);
      assert.equal(neigh(), 100);
      const fdbAfter = fdbIn(ns.name);
      assert.ok(!fdbAfter.includes(vtepMac(rs[200]!.nodeIP)), 'FDB entry of a deleted route gone');
      assert.ok(fdbAfter.includes(vtepMac(rs[50]!.nodeIP)), 'FDB entry of a kept route stays');
    } finally {
      ns.remove();
    }
  },
);

privilegedTest(
  'privileged: batchLines reports a line iproute2 cannot parse and applies the lines around it',
  async () => {
    const ns = makeNetns();
    try {
      const lines = Array.from(
        { length: 64 },
        (_, i) => `route replace 10.97.${i}.0/24 via 172.31.0.${2 + i} proto ${ROUTE_PROTO}`,
      );
      lines[20] = `route replace 10.97.20.0/24 via not-an-address proto ${ROUTE_PROTO}`; // parse error: ends the process
      lines[40] = `route replace 10.97.40.0/24 via 192.0.2.1 proto ${ROUTE_PROTO}`; // kernel refuses: reported, goes on
      const failed = await batchLines('ip', lines, { netns: ns.path });
      assert.deepEqual(
        [...failed.keys()].sort((a, b) => a - b),
        [20, 40],
      );
      assert.match(failed.get(20)!, /not-an-address/);
      assert.match(failed.get(40)!, /gateway/i);
      const have = routesIn(ns.name);
      assert.equal(have.size, 62);
      assert.equal(have.get('10.97.63.0/24'), '172.31.0.65');
      assert.ok(!have.has('10.97.20.0/24') && !have.has('10.97.40.0/24'));
    } finally {
      ns.remove();
    }
  },
);

privilegedTest(
  "privileged: routes carry spread metrics; an older agent's metric-0 routes are moved to them on list, never missing",
  async () => {
    const ns = makeNetns();
    try {
      const router = await startRouter('native', ns.path);
      const metrics = new Set(
        Array.from({ length: 2000 }, (_, i) => routeMetric(route(i).podCIDR)),
      );
      assert.ok(metrics.size > 500, `2,000 CIDRs spread over ${metrics.size} metrics`);
      // what an older agent left: metric 0
      execFileSync('ip', ['-n', ns.name, '-batch', '-'], {
        input: [0, 1, 2]
          .map(
            (i) => `route replace ${route(i).podCIDR} via ${route(i).nodeIP} proto ${ROUTE_PROTO}`,
          )
          .join('\n'),
      });
      const listed = await router.list();
      assert.deepEqual(
        listed.map((r) => r.podCIDR).sort(),
        [0, 1, 2].map((i) => route(i).podCIDR).sort(),
      );
      const show = () => kernelRoutes(ns.name);
      let rs = show();
      assert.equal(rs.length, 3, 'one route per CIDR after the move');
      for (const r of rs) assert.equal(r.metric, routeMetric(r.dst), r.dst);
      // a moved node: replace keeps one route per CIDR (same metric)
      const moved = { ...route(1), nodeIP: '172.31.200.9' };
      await router.apply({ upserts: [moved], deletes: [] });
      rs = show();
      assert.equal(rs.length, 3);
      assert.equal(rs.find((r) => r.dst === moved.podCIDR)?.gateway, '172.31.200.9');
      await router.apply({ upserts: [], deletes: [route(0)] });
      assert.equal(show().length, 2);
    } finally {
      ns.remove();
    }
  },
);
