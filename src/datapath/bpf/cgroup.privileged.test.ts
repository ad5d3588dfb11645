import assert from 'node:assert/strict';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { asm, R0, R1, R2, R6, R7, R10, Helper } from './asm/index.js';
import { be16, ipv4, pad, struct, type CodecValue } from './codec.js';
import { liveFds } from './fd.js';
import { attachCgroup, type Link } from './link.js';
import { newMap, type BpfMap } from './map.js';
import { loadProgram, type Program } from './program.js';
import { makeCgroup, makeNetns, runProcess, startProcess, stopProcess } from './testing.js';
import { AttachType, MapType, ProgramType, SockAddrCtx } from './types.js';

const addrPort = struct('addr_port', 8, { ip: [0, ipv4], port: [4, be16], pad: [6, pad(2)] });
type AddrPort = CodecValue<typeof addrPort>;

/** connect4: if (dst ip, port) is in `svc`, rewrite the destination to the value. */
function connect4Program(svc: BpfMap<AddrPort, AddrPort>) {
  return [
    asm.mov.reg(R6, R1),
    // key on the stack at r10-8: ip (4 bytes), port (be16) + 2 zero bytes.
    asm.ldxw(R7, R6, SockAddrCtx.userIp4),
    asm.stxw(R10, -8, R7),
    asm.ldxw(R7, R6, SockAddrCtx.userPort),
    asm.and.imm(R7, 0xffff),
    asm.stxw(R10, -4, R7),
    asm.loadMapPtr(R1, svc),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, -8),
    asm.call(Helper.MapLookupElem),
    asm.jeq.imm(R0, 0, 'out'),
    asm.ldxw(R7, R0, 0),
    asm.stxw(R6, SockAddrCtx.userIp4, R7),
    asm.ldxw(R7, R0, 4),
    asm.and.imm(R7, 0xffff),
    asm.stxw(R6, SockAddrCtx.userPort, R7),
    asm.label('out'),
    asm.retImm(1),
  ];
}

/** The service map with 10.1.2.3:80 -> 127.0.0.1:18080, and the connect4 program over it (not attached). */
function loadService(): { svc: BpfMap<AddrPort, AddrPort>; prog: Program } {
  const svc = newMap<AddrPort, AddrPort>({
    name: 'svc',
    type: MapType.Hash,
    maxEntries: 16,
    key: addrPort,
    value: addrPort,
  });
  try {
    svc.update({ ip: '10.1.2.3', port: 80 }, { ip: '127.0.0.1', port: 18080 });
    const prog = loadProgram({
      name: 'connect4',
      type: ProgramType.CgroupSockAddr,
      expectedAttachType: AttachType.CgroupInet4Connect,
      instructions: connect4Program(svc),
    });
    return { svc, prog };
  } catch (err) {
    svc.close();
    throw err;
  }
}

const SERVER = `require('net').createServer(s=>s.end('hello-from-backend\\n')).listen(18080,'127.0.0.1',()=>console.log('listening'))`;
const CLIENT = `const s=require('net').connect(80,'10.1.2.3');s.on('data',d=>process.stdout.write(d));s.on('error',e=>{console.error(e.code);process.exit(3)})`;

/** A throwaway netns running SERVER and a cgroup; what a test loads into `rig` is closed for it. */
interface Rig {
  ns: ReturnType<typeof makeNetns>;
  cg: ReturnType<typeof makeCgroup>;
  svc?: BpfMap<AddrPort, AddrPort>;
  prog?: Program;
  link?: Link;
}

/**
 * Runs FN with a new netns (SERVER listening in it) and cgroup named after
 * TAG; afterwards closes the rig's link, program and map, stops the server
 * and removes the cgroup and netns, whether FN failed or not.
 */
async function withRig(tag: string, fn: (rig: Rig) => Promise<void>): Promise<void> {
  const rig: Rig = { ns: makeNetns(tag), cg: makeCgroup(tag) };
  const server = startProcess(
    'nsenter',
    [`--net=${rig.ns.path}`, process.execPath, '-e', SERVER],
    /listening/,
  );
  try {
    await server.ready;
    await fn(rig);
  } finally {
    rig.link?.close();
    rig.prog?.close();
    rig.svc?.close();
    await stopProcess(server.child);
    rig.cg.remove();
    rig.ns.remove();
  }
}

/**
 * Runs CLIENT in the rig's cgroup and netns: it joins the cgroup first, then
 * enters the namespace (ip netns exec would hide /sys/fs/cgroup).
 */
function client({ cg, ns }: Rig) {
  return runProcess('sh', [
    '-c',
    `echo $$ > ${cg.path}/cgroup.procs && exec nsenter --net=${ns.path} ${process.execPath} -e "${CLIENT}"`,
  ]);
}

privilegedTest(
  'privileged: cgroup connect4 rewrites a real TCP connection inside a throwaway netns',
  async () => {
    const before = liveFds().length;
    await withRig('c4', async (rig) => {
      const unrouted = await client(rig);
      assert.notEqual(
        unrouted.code,
        0,
        'without the program, 10.1.2.3 is unreachable in the namespace',
      );
      assert.match(unrouted.stderr, /ENETUNREACH|EHOSTUNREACH|ECONNREFUSED|ETIMEDOUT/);

      // on the rig, so withRig closes them whatever happens
      const { svc, prog } = Object.assign(rig, loadService());
      rig.link = attachCgroup(prog, {
        cgroup: rig.cg.path,
        attachType: AttachType.CgroupInet4Connect,
      });
      assert.equal(rig.link.kind, 'bpf_link');

      const rewritten = await client(rig);
      assert.equal(rewritten.stdout, 'hello-from-backend\n', `stderr: ${rewritten.stderr}`);
      assert.equal(rewritten.code, 0);

      // Deleting the service entry stops the rewrite: the map is live.
      assert.equal(svc.delete({ ip: '10.1.2.3', port: 80 }), true);
      const after = await client(rig);
      assert.notEqual(after.code, 0);

      // Closing the link detaches the program.
      svc.update({ ip: '10.1.2.3', port: 80 }, { ip: '127.0.0.1', port: 18080 });
      rig.link.close();
      rig.link = undefined;
      const detached = await client(rig);
      assert.notEqual(detached.code, 0, 'after close() the program is detached');
    });
    assert.equal(liveFds().length, before, 'no fd leaked');
  },
);

privilegedTest(
  'privileged: cgroup attach falls back to PROG_ATTACH and detaches on close',
  async () => {
    const before = liveFds().length + 1; // + the svc map, still open at the check
    await withRig('c4l', async (rig) => {
      const { prog } = Object.assign(rig, loadService());
      rig.link = attachCgroup(prog, {
        cgroup: rig.cg.path,
        attachType: AttachType.CgroupInet4Connect,
        forceLegacy: true,
      });
      assert.equal(rig.link.kind, 'prog_attach');
      // The attachment keeps its own program reference: closing ours does not break detach.
      prog.close();
      const r = await client(rig);
      assert.equal(r.stdout, 'hello-from-backend\n', r.stderr);
      rig.link.close();
      rig.link = undefined;
      const d = await client(rig);
      assert.notEqual(d.code, 0);
      assert.equal(liveFds().length, before);
    });
  },
);

privilegedTest('privileged: attaching to a missing cgroup names it', () => {
  const prog = loadProgram({
    name: 'c4',
    type: ProgramType.CgroupSockAddr,
    expectedAttachType: AttachType.CgroupInet4Connect,
    instructions: [asm.retImm(1)],
  });
  try {
    assert.throws(
      () =>
        attachCgroup(prog, {
          cgroup: '/sys/fs/cgroup/unified/tendril-does-not-exist',
          attachType: AttachType.CgroupInet4Connect,
        }),
      (e: Error) => /tendril-does-not-exist/.test(e.message) && /ENOENT/.test(e.message),
    );
  } finally {
    prog.close();
  }
});
