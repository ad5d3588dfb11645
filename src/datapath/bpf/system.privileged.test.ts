import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { asm } from './asm/index.js';
import { bpffsMounts, ensureBpffs, isOnBpffs, removePinnedTree } from './bpffs.js';
import { u32 } from './codec.js';
import { BpfError, NotSupportedError } from './errors.js';
import { haveCgroupLink, haveMapType, haveProgramType, requireFeature } from './features.js';
import { liveFds, openFdCount } from './fd.js';
import { BpfLink, attachCgroup, createOrUpdatePinnedLink } from './link.js';
import { newMap } from './map.js';
import { withNetns } from './netns.js';
import { loadProgram } from './program.js';
import { queryAttached } from './query.js';
import { ifNameToIndex } from './syscall.js';
import { makeCgroup, makeNetns, sh, uniqueName } from './testing.js';
import { AttachType, MapType, ProgramType } from './types.js';

privilegedTest(
  'privileged: withNetns switches the thread into a namespace and always switches back',
  () => {
    const ns = makeNetns('wn');
    const fdsBefore = openFdCount(/^net:/);
    try {
      sh('ip', [
        '-n',
        ns.name,
        'link',
        'add',
        'tdummy0',
        'type',
        'veth',
        'peer',
        'name',
        'tdummy1',
      ]);
      const outside = readlinkSync('/proc/thread-self/ns/net');
      assert.equal(ifNameToIndex('tdummy0'), 0, 'not visible outside');
      const inside = withNetns(
        ns.name,
        () => [readlinkSync('/proc/thread-self/ns/net'), ifNameToIndex('tdummy0')] as const,
      );
      assert.notEqual(inside[0], outside);
      assert.ok(inside[1] > 0, 'visible inside');
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), outside, 'restored');
      // A throw inside still restores.
      assert.throws(
        () =>
          withNetns(ns.path, () => {
            throw new Error('boom');
          }),
        /boom/,
      );
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), outside);
      // Async functions are refused (their continuation would run outside).
      assert.throws(() => withNetns(ns.name, async () => 1), /returned a promise/);
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), outside);
      assert.throws(
        () => withNetns('tendril-no-such-netns', () => 1),
        (e: unknown) => e instanceof BpfError && /tendril-no-such-netns/.test(e.message),
      );
      assert.equal(openFdCount(/^net:/), fdsBefore, 'namespace fds closed');
    } finally {
      ns.remove();
    }
  },
);

privilegedTest(
  'privileged: feature probes answer and requireFeature names the feature and kernel',
  () => {
    assert.equal(haveMapType(MapType.LpmTrie), true);
    assert.equal(haveMapType(MapType.Ringbuf), true);
    assert.equal(haveProgramType(ProgramType.CgroupSockAddr), true);
    assert.equal(haveCgroupLink(), true);
    requireFeature('tcx');
    assert.throws(
      () => requireFeature('map:999'),
      (e: unknown) =>
        e instanceof NotSupportedError &&
        /map type MapType\(999\) is not supported by kernel \d/.test(e.message) &&
        e.kernel.length > 0,
    );
    assert.throws(() => requireFeature('prog:999'), NotSupportedError);
  },
);

privilegedTest('privileged: bpffs helpers mount when absent and remove only pinned trees', () => {
  assert.equal(ensureBpffs(BPFFS_ROOT), false, 'already mounted here');
  const tmp = mkdtempSync(join(tmpdir(), 'tendril-bpffs-'));
  const mnt = join(tmp, 'bpf');
  try {
    assert.equal(ensureBpffs(mnt), true);
    assert.ok(bpffsMounts().includes(mnt));
    assert.ok(isOnBpffs(join(mnt, 'x')));
    const m = newMap({ name: 'pinned', type: MapType.Hash, maxEntries: 1, key: u32, value: u32 });
    mkdirSync(join(mnt, 'tree', 'sub'), { recursive: true });
    m.pin(join(mnt, 'tree', 'sub', 'm'));
    m.close();
    assert.throws(() => removePinnedTree(mnt), /mount point/);
    removePinnedTree(join(mnt, 'tree'));
    assert.doesNotMatch(execFileSync('ls', ['-A', mnt], { encoding: 'utf8' }), /tree/);
    writeFileSync(join(tmp, 'plain'), 'x');
    assert.throws(() => removePinnedTree(join(tmp, 'plain')), /not on a bpffs mount/);
    removePinnedTree(join(mnt, 'absent')); // fine
  } finally {
    try {
      execFileSync('umount', [mnt]);
    } catch {
      /* not mounted */
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});

privilegedTest(
  'privileged: query lists cgroup programs; the fd registry sees nothing leaked',
  () => {
    const before = liveFds().length;
    const cg = makeCgroup('q');
    const prog = loadProgram({
      name: 'c4',
      type: ProgramType.CgroupSockAddr,
      expectedAttachType: AttachType.CgroupInet4Connect,
      instructions: asm.retImm(1),
    });
    try {
      const target = { cgroup: cg.path, attachType: AttachType.CgroupInet4Connect } as const;
      assert.deepEqual(queryAttached(target).programIds, []);
      const link = attachCgroup(prog, target);
      assert.ok(liveFds().some((f) => f.kind === 'link'));
      assert.deepEqual(queryAttached(target).programIds, [prog.info().id]);
      // Atomic replacement of the link's program (what a restarted agent does).
      const prog2 = loadProgram({
        name: 'c4v2',
        type: ProgramType.CgroupSockAddr,
        expectedAttachType: AttachType.CgroupInet4Connect,
        instructions: asm.retImm(1),
      });
      try {
        assert.ok(link instanceof BpfLink);
        link.update(prog2, { expected: prog });
        assert.deepEqual(queryAttached(target).programIds, [prog2.info().id]);
        assert.equal(link.info().programId, prog2.info().id);
        assert.throws(
          () => link.update(prog, { expected: prog }),
          (e: unknown) => e instanceof BpfError && e.command === 'BPF_LINK_UPDATE',
        );
      } finally {
        prog2.close();
      }
      link.close();
      assert.deepEqual(queryAttached(target).programIds, []);
    } finally {
      prog.close();
      cg.remove();
    }
    assert.equal(liveFds().length, before);
    assert.throws(
      () =>
        queryAttached({
          cgroup: join('/sys/fs/cgroup/unified', uniqueName('none')),
          attachType: AttachType.CgroupInet4Connect,
        }),
      /ENOENT/,
    );
  },
);

privilegedTest(
  'privileged: createOrUpdatePinnedLink creates and pins, then updates the pinned link in place',
  () => {
    const cg = makeCgroup('pl');
    const dir = join(BPFFS_ROOT, uniqueName('pl'));
    const target = { cgroup: cg.path, attachType: AttachType.CgroupInet4Connect } as const;
    const load = (name: string) =>
      loadProgram({
        name,
        type: ProgramType.CgroupSockAddr,
        expectedAttachType: AttachType.CgroupInet4Connect,
        instructions: asm.retImm(1),
      });
    const v1 = load('v1');
    const v2 = load('v2');
    try {
      const path = join(dir, 'connect4');
      const a = createOrUpdatePinnedLink(path, v1, () => attachCgroup(v1, target));
      assert.equal(a.pinnedPath, path);
      a.close(); // the agent exits; the pinned link keeps the program attached
      assert.deepEqual(queryAttached(target).programIds, [v1.info().id]);
      const b = createOrUpdatePinnedLink(path, v2, () => assert.fail('must reuse the pinned link'));
      assert.deepEqual(
        queryAttached(target).programIds,
        [v2.info().id],
        'replaced in place, never detached',
      );
      b.unpin();
      b.close();
      assert.deepEqual(queryAttached(target).programIds, []);
    } finally {
      v1.close();
      v2.close();
      rmSync(dir, { recursive: true, force: true });
      cg.remove();
    }
  },
);
