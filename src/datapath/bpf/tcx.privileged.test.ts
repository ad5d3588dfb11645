import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { asm, Helper, R1, R2, R3, R4, R6, R10 } from './asm/index.js';
import { u32, u64 } from './codec.js';
import { BpfError } from './errors.js';
import { haveTcx } from './features.js';
import { liveFds } from './fd.js';
import { openPinnedLink, type Link } from './link.js';
import { newMap, type BpfMap } from './map.js';
import { loadProgram, type Program } from './program.js';
import { queryAttached } from './query.js';
import { openRingBuffer } from './ringbuf.js';
import { attachTc } from './tcx.js';
import {
  dropUdpPort,
  makeNetns,
  runProcess,
  sh,
  startProcess,
  stopProcess,
  uniqueName,
} from './testing.js';
import { MapType, ProgramType, SkBuffCtx, TcAction } from './types.js';

/** Two namespaces joined by a veth pair: va (10.99.0.1) in a, vb (10.99.0.2) in b. */
function vethPair() {
  const a = makeNetns('va');
  const b = makeNetns('vb');
  try {
    sh('ip', [
      '-n',
      a.name,
      'link',
      'add',
      'va',
      'type',
      'veth',
      'peer',
      'name',
      'vb',
      'netns',
      b.name,
    ]);
    sh('ip', ['-n', a.name, 'addr', 'add', '10.99.0.1/24', 'dev', 'va']);
    sh('ip', ['-n', b.name, 'addr', 'add', '10.99.0.2/24', 'dev', 'vb']);
    sh('ip', ['-n', a.name, 'link', 'set', 'va', 'up']);
    sh('ip', ['-n', b.name, 'link', 'set', 'vb', 'up']);
  } catch (e) {
    a.remove();
    b.remove();
    throw e;
  }
  return { a, b, remove: () => (a.remove(), b.remove()) };
}

const RECEIVER = `const d=require('dgram');let n=0;for(const p of [9998,9999]){const s=d.createSocket('udp4');s.on('message',m=>console.log(p+':'+m));s.bind(p,'10.99.0.2',()=>{if(++n===2)console.log('listening')})}`;
const SENDER = `const s=require('dgram').createSocket('udp4');let i=0;const go=()=>{if(i++>=5)return s.close();s.send('x'+i,9999,'10.99.0.2',()=>s.send('y'+i,9998,'10.99.0.2',()=>setTimeout(go,30)))};go()`;

/** Sends UDP to 9999 and 9998 from a to b; returns what b received. */
async function exchange(ns: { a: { path: string }; b: { path: string } }): Promise<string[]> {
  const rx = startProcess(
    'nsenter',
    [`--net=${ns.b.path}`, process.execPath, '-e', RECEIVER],
    /listening/,
  );
  try {
    await rx.ready;
    let out = '';
    rx.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const tx = await runProcess('nsenter', [`--net=${ns.a.path}`, process.execPath, '-e', SENDER]);
    assert.equal(tx.code, 0, tx.stderr);
    // Wait (bounded) for the receiver to report the last passing datagram, then a little more
    // for any stragglers, so a loaded machine does not turn into a false result.
    for (let i = 0; i < 60 && !out.includes('9998:y5'); i++) await sleep(50);
    await sleep(150);
    return out.split('\n').filter(Boolean);
  } finally {
    await stopProcess(rx.child);
  }
}

async function dropTest(forceLegacy: boolean) {
  const before = liveFds().length;
  const ns = vethPair();
  let counter: BpfMap<number, bigint> | undefined;
  let prog: Program | undefined;
  let link: Link | undefined;
  try {
    const baseline = await exchange(ns);
    assert.ok(
      baseline.some((l) => l.startsWith('9999:')),
      `without the program both ports receive: ${baseline}`,
    );
    counter = newMap({ name: 'drops', type: MapType.Array, maxEntries: 1, key: u32, value: u64 });
    prog = loadProgram({
      name: 'drop9999',
      type: ProgramType.SchedCls,
      instructions: dropUdpPort(9999, counter),
    });
    link = attachTc(prog, { ifname: 'vb', direction: 'ingress', netns: ns.b.name, forceLegacy });
    assert.equal(link.kind, forceLegacy ? 'tc' : 'bpf_link');
    const got = await exchange(ns);
    assert.ok(
      got.some((l) => l.startsWith('9998:')),
      `port 9998 passes: ${got}`,
    );
    assert.ok(!got.some((l) => l.startsWith('9999:')), `port 9999 is dropped: ${got}`);
    assert.ok(counter.lookup(0)! >= 5n, `drops counted: ${counter.lookup(0)}`);
    link.close();
    link = undefined;
    const after = await exchange(ns);
    assert.ok(
      after.some((l) => l.startsWith('9999:')),
      `after close() 9999 passes again: ${after}`,
    );
  } finally {
    link?.close();
    prog?.close();
    counter?.close();
    ns.remove();
  }
  assert.equal(liveFds().length, before);
}

privilegedTest(
  'privileged: TCX ingress in a netns drops UDP to one port and passes another',
  async () => {
    assert.equal(haveTcx(), true, 'this kernel (6.18) has TCX');
    await dropTest(false);
  },
);

privilegedTest('privileged: legacy tc fallback drops and passes the same way', async () => {
  await dropTest(true);
});

privilegedTest(
  'privileged: query lists TCX programs and links; a pinned link outlives its fd',
  () => {
    const ns = vethPair();
    const pins = join(BPFFS_ROOT, uniqueName('links'));
    mkdirSync(pins, { recursive: true });
    const prog = loadProgram({
      name: 'pass',
      type: ProgramType.SchedCls,
      instructions: asm.retImm(TcAction.Pass),
    });
    const prog2 = loadProgram({
      name: 'next',
      type: ProgramType.SchedCls,
      instructions: asm.retImm(TcAction.Next),
    });
    try {
      const target = { ifname: 'vb', direction: 'egress' as const, netns: ns.b.name };
      assert.deepEqual(queryAttached(target).programIds, []);
      const l1 = attachTc(prog, target);
      const l2 = attachTc(prog2, { ...target, first: true });
      assert.throws(
        () => attachTc(prog, target),
        (e: unknown) => e instanceof BpfError && e.errnoName === 'EEXIST',
      );
      assert.equal(l1.kind, 'bpf_link');
      const q = queryAttached(target);
      assert.deepEqual(q.programIds, [prog2.info().id, prog.info().id]);
      if (l1.kind === 'bpf_link' && l2.kind === 'bpf_link') {
        const [i1, i2] = [
          (l1 as unknown as { info(): { id: number } }).info().id,
          (l2 as unknown as { info(): { id: number } }).info().id,
        ];
        assert.deepEqual(q.linkIds, [i2, i1], 'first: true puts the link before the other');
      }
      assert.ok(q.revision > 0n);
      l1.pin(join(pins, 'l1'));
      l1.close();
      l2.close();
      assert.equal(queryAttached(target).programIds.length, 1, 'the pinned link stays attached');
      const reopened = openPinnedLink(join(pins, 'l1'));
      reopened.unpin();
      reopened.close();
      assert.equal(queryAttached(target).programIds.length, 0);
      assert.throws(
        () => attachTc(prog, { ifname: 'nope0', direction: 'ingress', netns: ns.b.name }),
        (e: unknown) =>
          e instanceof BpfError &&
          /nope0/.test(e.message) &&
          new RegExp(ns.b.name).test(e.message) &&
          e.errnoName === 'ENODEV',
      );
      assert.throws(
        () => attachTc(prog, { ifname: 'vb', direction: 'ingress', netns: 'tendril-no-such-ns' }),
        /tendril-no-such-ns/,
      );
    } finally {
      prog.close();
      prog2.close();
      rmSync(pins, { recursive: true, force: true });
      ns.remove();
    }
  },
);

privilegedTest(
  'privileged: ring buffer records produced by real traffic arrive through the async iterator',
  async () => {
    const before = liveFds().length;
    const ns = vethPair();
    const rb = newMap({ name: 'events', type: MapType.Ringbuf, maxEntries: 1 << 16 });
    // Emits { ifindex: u32, dport: u32 } for every IPv4/UDP packet.
    const prog = loadProgram({
      name: 'udp_events',
      type: ProgramType.SchedCls,
      instructions: [
        asm.mov.reg(R6, R1),
        asm.ldxw(R2, R6, SkBuffCtx.data),
        asm.ldxw(R3, R6, SkBuffCtx.dataEnd),
        asm.mov.reg(R1, R2),
        asm.add.imm(R1, 14 + 20 + 8),
        asm.jgt.reg(R1, R3, 'out'),
        asm.ldxb(R1, R2, 14 + 9),
        asm.jne.imm(R1, 17, 'out'),
        asm.ldxh(R1, R2, 14 + 20 + 2),
        asm.be16(R1),
        asm.stxw(R10, -4, R1),
        asm.ldxw(R1, R6, SkBuffCtx.ifindex),
        asm.stxw(R10, -8, R1),
        asm.loadMapPtr(R1, rb),
        asm.mov.reg(R2, R10),
        asm.add.imm(R2, -8),
        asm.mov.imm(R3, 8),
        asm.mov.imm(R4, 0),
        asm.call(Helper.RingbufOutput),
        asm.label('out'),
        asm.retImm(TcAction.Pass),
      ],
    });
    const reader = openRingBuffer(rb);
    let link: Link | undefined;
    try {
      await reader.ready();
      link = attachTc(prog, { ifname: 'vb', direction: 'ingress', netns: ns.b.name });
      // The event loop stays free while the worker waits for records.
      let ticks = 0;
      const iv = setInterval(() => ticks++, 5);
      const got = exchange(ns);
      const ports: number[] = [];
      for await (const rec of reader) {
        assert.equal(rec.length, 8);
        ports.push(rec.readUInt32LE(4));
        if (ports.length >= 10) break; // break closes the reader
      }
      clearInterval(iv);
      await got;
      assert.ok(ticks > 5, `timers kept running (${ticks})`);
      assert.deepEqual([...new Set(ports)].sort(), [9998, 9999]);
      assert.equal(await reader.read(), undefined, 'a closed reader yields nothing');
    } finally {
      await reader.close();
      link?.close();
      prog.close();
      rb.close();
      ns.remove();
    }
    assert.equal(liveFds().length, before, 'reader fd closed');
  },
);
