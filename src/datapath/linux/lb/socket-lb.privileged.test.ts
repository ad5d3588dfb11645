/**
 * The socket LB against the real kernel: a throwaway netns with three backend
 * addresses (TCP greeter/echo on :8080, UDP echo on :5353), a throwaway cgroup
 * the client processes join before entering the netns, and a throwaway bpffs
 * directory. Everything is removed in `after`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { privilegedTest, privilegeProblem } from '../../../../test/helpers/privileged.js';
import { ensureBpffs, removePinnedTree } from '../../bpf/bpffs.js';
import { liveFds } from '../../bpf/fd.js';
import { queryAttached } from '../../bpf/query.js';
import {
  makeCgroup,
  makeNetns,
  sh,
  startProcess,
  stopProcess,
  uniqueName,
} from '../../bpf/testing.js';
import { AttachType } from '../../bpf/types.js';
import type { Backend, ServiceEntry } from '../../types.js';
import { createSocketLB } from './index.js';
import { BpfSocketLB } from './socket-lb.js';
import { nopLogger } from '../../../util/log.js';

const B = ['10.200.0.1', '10.200.0.2', '10.200.0.3'];
const be = (ip: string, port: number, ready = true): Backend => ({ ip, port, clusterId: 1, ready });

const SERVER = `
const net=require('net'),dgram=require('dgram');const ips=process.argv[1].split(',');let n=0;
const up=()=>{if(++n===ips.length*2)console.log('listening')};
for(const ip of ips){
  net.createServer(s=>{s.on('error',()=>{});s.write(ip+'\\n');s.on('data',d=>s.write(d))}).listen(8080,ip,up);
  const u=dgram.createSocket('udp4');u.on('message',(m,r)=>u.send(ip+' '+m,r.port,r.address));u.bind(5353,ip,up);
}`;

const CLIENT = `
const net=require('net'),dgram=require('dgram');const [mode,host,port,count]=process.argv.slice(1);const out=[];
const done=()=>{console.log(JSON.stringify(out));process.exit(0)};
if(mode==='tcp')(async()=>{for(let i=0;i<+count;i++)out.push(await new Promise(res=>{const t0=Date.now();
  const s=net.connect(+port,host);let d='';s.setTimeout(3000,()=>{s.destroy();res({err:'TIMEOUT',ms:Date.now()-t0})});
  s.on('data',x=>{d+=x;if(d.includes('\\n')){s.destroy();res({ip:d.trim()})}});s.on('error',e=>res({err:e.code,ms:Date.now()-t0}))}));done()})();
if(mode==='udp'){const u=dgram.createSocket('udp4');u.on('message',(m,r)=>{out.push({reply:String(m),from:r.address+':'+r.port});if(out.length===+count)done()});
  u.on('error',e=>{out.push({err:e.code});done()});setTimeout(done,3000);
  for(let i=0;i<+count;i++)u.send('q'+i,+port,host,e=>{if(e){out.push({err:e.code});done()}})}
if(mode==='udpconn'){const u=dgram.createSocket('udp4');u.on('error',e=>{out.push({err:e.code});done()});setTimeout(done,3000);
  u.connect(+port,host,()=>{const p=u.remoteAddress();u.on('message',(m,r)=>{out.push({peer:p.address+':'+p.port,reply:String(m),from:r.address+':'+r.port});done()});u.send('hello')})}
if(mode==='hold'){const s=net.connect(+port,host);s.on('error',e=>{console.log('error '+e.code)});
  s.on('data',d=>process.stdout.write('got '+d));process.stdin.on('data',d=>s.write(d));process.stdin.on('end',()=>s.destroy())}
`;

let ns: ReturnType<typeof makeNetns>;
let cg: ReturnType<typeof makeCgroup>;
let bpffsDir: string;
let server: ChildProcess | undefined;
let lb: BpfSocketLB | undefined;
const held: ChildProcess[] = [];
let fdsBefore = 0;

function clientArgs(args: string[]): string[] {
  return [
    '-c',
    `echo $$ > ${cg.path}/cgroup.procs && exec nsenter --net=${ns.path} "$@"`,
    'sh',
    process.execPath,
    '-e',
    CLIENT,
    ...args,
  ];
}

/** Runs the client in the cgroup and netns; returns its JSON output. */
function client<T = Record<string, string | number>>(...args: string[]): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', clientArgs(args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.stderr.on('data', (d: Buffer) => (err += d));
    const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('close', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out) as T[]);
      } catch {
        reject(new Error(`client ${args.join(' ')}: bad output ${out} ${err}`));
      }
    });
  });
}

const svc = (
  ip: string,
  port: number,
  protocol: 'TCP' | 'UDP',
  backends: Backend[],
  algorithm: 'random' | 'maglev' = 'random',
): ServiceEntry => ({
  frontend: { ip, port, protocol },
  backends,
  algorithm,
});

before(async () => {
  if (privilegeProblem()) return;
  ensureBpffs();
  ns = makeNetns('lb');
  cg = makeCgroup('lb');
  bpffsDir = join('/sys/fs/bpf', uniqueName('lb'));
  mkdirSync(bpffsDir, { recursive: true });
  for (const ip of B) sh('ip', ['-n', ns.name, 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
  const s = startProcess(
    'nsenter',
    [`--net=${ns.path}`, process.execPath, '-e', SERVER, B.join(',')],
    /listening/,
  );
  server = s.child;
  await s.ready;
  fdsBefore = liveFds().length;
  lb = (await createSocketLB({ bpffsDir, cgroupPath: cg.path, logger: nopLogger })) as BpfSocketLB;
});

after(async () => {
  if (privilegeProblem()) return;
  for (const h of held) await stopProcess(h);
  if (server) await stopProcess(server);
  try {
    lb?.destroy();
  } catch {
    /* below */
  }
  if (existsSync(bpffsDir)) removePinnedTree(bpffsDir);
  cg?.remove();
  ns?.remove();
});

privilegedTest(
  'privileged: socket LB: TCP to a VIP reaches every ready backend, none after removal',
  async () => {
    assert.ok(lb!.attached());
    lb!.upsertService(
      svc(
        '10.96.0.10',
        80,
        'TCP',
        B.map((ip) => be(ip, 8080)),
      ),
    );
    const r1 = await client('tcp', '10.96.0.10', '80', '30');
    assert.equal(r1.length, 30);
    assert.deepEqual(
      r1.filter((x) => x.err),
      [],
      'no errors',
    );
    assert.deepEqual(
      new Set(r1.map((x) => x.ip)),
      new Set(B),
      'all three backends got connections',
    );

    lb!.upsertService(
      svc('10.96.0.10', 80, 'TCP', [be(B[0]!, 8080), be(B[1]!, 8080), be(B[2]!, 8080, false)]),
    );
    const r2 = await client('tcp', '10.96.0.10', '80', '30');
    assert.deepEqual(
      r2.filter((x) => x.err),
      [],
    );
    assert.ok(!r2.some((x) => x.ip === B[2]), 'the removed backend gets no new connections');
    assert.deepEqual(new Set(r2.map((x) => x.ip)), new Set([B[0], B[1]]));
    const listed = lb!
      .listServices()
      .find((s) => s.frontend.ip === '10.96.0.10' && s.frontend.protocol === 'TCP');
    assert.deepEqual(listed?.backends.map((b) => b.ip).sort(), [B[0], B[1]]);
    // a surplus slot was deleted; the unused backend entry too
    assert.equal(
      lb!.maps.services.lookup({ vip: '10.96.0.10', dport: 80, proto: 6, slot: 3 }),
      undefined,
    );
    assert.equal([...lb!.maps.backends.keys()].length, 2);

    // a port that is not a service is left alone: straight to the backend address
    const direct = await client('tcp', B[2]!, '8080', '1');
    assert.equal(direct[0]!.ip, B[2]);
  },
);

privilegedTest(
  'privileged: socket LB: a service without backends refuses at once (ECONNREFUSED)',
  async () => {
    lb!.upsertService(svc('10.96.0.11', 80, 'TCP', [be(B[0]!, 8080, false)]));
    const r = await client('tcp', '10.96.0.11', '80', '3');
    for (const x of r) {
      assert.equal(x.err, 'ECONNREFUSED', JSON.stringify(x));
      assert.ok((x.ms as number) < 500, `refused in ${x.ms} ms`);
    }
    lb!.upsertService(svc('10.96.0.11', 53, 'UDP', []));
    const u = await client('udp', '10.96.0.11', '53', '1');
    assert.equal(u[0]!.err, 'ECONNREFUSED');
    lb!.deleteService({ ip: '10.96.0.11', port: 53, protocol: 'UDP' });
    lb!.deleteService({ ip: '10.96.0.11', port: 80, protocol: 'TCP' });
  },
);

privilegedTest('privileged: socket LB: UDP through a VIP, replies come from the VIP', async () => {
  lb!.upsertService(
    svc(
      '10.96.0.10',
      53,
      'UDP',
      B.map((ip) => be(ip, 5353)),
    ),
  );
  const r = await client('udp', '10.96.0.10', '53', '20');
  assert.equal(r.length, 20, JSON.stringify(r));
  for (const x of r) assert.equal(x.from, '10.96.0.10:53', 'reply source rewritten to the VIP');
  const servedBy = new Set(r.map((x) => String(x.reply).split(' ')[0]));
  assert.ok(
    servedBy.size > 1,
    `random spreads an unconnected socket's datagrams: ${[...servedBy]}`,
  );

  const c = await client('udpconn', '10.96.0.10', '53');
  assert.equal(c[0]!.peer, '10.96.0.10:53', 'getpeername shows the VIP');
  assert.equal(c[0]!.from, '10.96.0.10:53');
  assert.ok(B.includes(String(c[0]!.reply).split(' ')[0]!));
});

privilegedTest(
  'privileged: socket LB: maglev picks one backend per socket, consistently',
  async () => {
    lb!.upsertService(
      svc(
        '10.96.0.12',
        53,
        'UDP',
        B.map((ip) => be(ip, 5353)),
        'maglev',
      ),
    );
    const picks = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await client('udp', '10.96.0.12', '53', '15');
      assert.equal(r.length, 15);
      const servedBy = new Set(r.map((x) => String(x.reply).split(' ')[0]));
      assert.equal(servedBy.size, 1, `one socket, one backend: ${[...servedBy]}`);
      for (const x of r) assert.equal(x.from, '10.96.0.12:53');
      picks.add([...servedBy][0]!);
    }
    lb!.upsertService(
      svc(
        '10.96.0.12',
        80,
        'TCP',
        B.map((ip) => be(ip, 8080)),
        'maglev',
      ),
    );
    const t = await client('tcp', '10.96.0.12', '80', '20');
    assert.deepEqual(
      t.filter((x) => x.err),
      [],
    );
    assert.ok(new Set(t.map((x) => x.ip)).size >= 2, 'different sockets spread over the table');
    assert.equal(
      lb!.listServices().find((s) => s.frontend.ip === '10.96.0.12')?.algorithm,
      'maglev',
    );
    assert.equal(
      lb!.maps.maglev.lookup(lb!.serviceId({ ip: '10.96.0.12', port: 80, protocol: 'TCP' })!)
        ?.length,
      1021,
    );
  },
);

privilegedTest('privileged: socket LB: connections never fail while backends change', async () => {
  const all = B.map((ip) => be(ip, 8080));
  lb!.upsertService(svc('10.96.0.13', 80, 'TCP', all));
  const running = client('tcp', '10.96.0.13', '80', '150');
  let updates = 0;
  let finished = false;
  void running.finally(() => (finished = true));
  const sets = [[all[0]!], all, [all[2]!, all[1]!], [all[1]!], all];
  while (!finished) {
    lb!.upsertService(svc('10.96.0.13', 80, 'TCP', sets[updates % sets.length]!));
    updates++;
    await new Promise((r) => setTimeout(r, 2));
  }
  const r = await running;
  assert.equal(r.length, 150);
  assert.deepEqual(
    r.filter((x) => x.err),
    [],
    `no connection failed during ${updates} updates`,
  );
  assert.ok(updates > 10, `${updates} updates raced the connections`);
  lb!.deleteService({ ip: '10.96.0.13', port: 80, protocol: 'TCP' });
  assert.throws(
    () => lb!.upsertService(svc('10.96.0.14', 0, 'TCP', all)),
    (e: Error & { code?: string }) => e.code === 'LB_INVALID_SERVICE' && /port 0/.test(e.message),
  );
  assert.throws(
    () => lb!.upsertService(svc('fd00::1', 80, 'TCP', all)),
    (e: Error & { code?: string }) => e.code === 'LB_INVALID_SERVICE' && /IPv4/.test(e.message),
  );
});

privilegedTest(
  'privileged: socket LB: a restart over the same pins keeps connections and services',
  async () => {
    // an established connection through the VIP
    const h = spawn('sh', clientArgs(['hold', '10.96.0.10', '80']), {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    held.push(h);
    let out = '';
    h.stdout!.on('data', (d: Buffer) => (out += d));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re);
    };
    await waitFor(/got 10\.200\.0\.[12]/);
    const before = lb!.listServices();

    // "agent restart": close fds (pinned links and maps stay), open a new LB over the pins
    lb!.close();
    const q = queryAttached({ cgroup: cg.path, attachType: AttachType.CgroupInet4Connect });
    assert.equal(q.programIds.length, 1, 'connect4 stays attached while no agent runs');
    const during = await client('tcp', '10.96.0.10', '80', '3');
    assert.ok(
      during.every((x) => x.ip === B[0] || x.ip === B[1]),
      'the service works without the agent',
    );

    lb = BpfSocketLB.open({ bpffsDir, cgroupPath: cg.path });
    assert.ok(lb.attached());
    assert.deepEqual(lb.listServices(), before, 'adopted the same services');
    h.stdin!.write('ping-after-restart\n');
    await waitFor(/got ping-after-restart/);
    const r = await client('tcp', '10.96.0.10', '80', '6');
    assert.deepEqual(
      r.filter((x) => x.err),
      [],
    );
    // still exactly one program per hook (the link's program was replaced, not added)
    assert.equal(
      queryAttached({ cgroup: cg.path, attachType: AttachType.CgroupInet4Connect }).programIds
        .length,
      1,
    );
    // the adopted index is right: removing a backend after the restart works
    lb.upsertService(svc('10.96.0.10', 80, 'TCP', [be(B[1]!, 8080)]));
    const r2 = await client('tcp', '10.96.0.10', '80', '6');
    assert.ok(
      r2.every((x) => x.ip === B[1]),
      JSON.stringify(r2),
    );
    h.stdin!.end();
  },
);

privilegedTest(
  'privileged: socket LB: destroy detaches everything and removes the pins',
  async () => {
    lb!.destroy();
    lb = undefined;
    for (const t of [
      AttachType.CgroupInet4Connect,
      AttachType.CgroupUdp4Sendmsg,
      AttachType.CgroupUdp4Recvmsg,
      AttachType.CgroupInet4Getpeername,
    ])
      assert.equal(queryAttached({ cgroup: cg.path, attachType: t }).programIds.length, 0);
    assert.ok(!existsSync(join(bpffsDir, 'lb')));
    assert.equal(liveFds().length, fdsBefore, 'every fd the LB opened is closed');
    const r = await client('tcp', '10.96.0.10', '80', '1');
    assert.ok(r[0]!.err, 'no translation after uninstall');
  },
);
