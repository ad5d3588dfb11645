import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from './ipam.js';
import { TendrilError } from '../util/errors.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'tendril-ipam-'));
}

test('allocates from the CIDR, skipping network and broadcast, idempotent per container', () => {
  const dir = tmp();
  try {
    const ipam = new Ipam({ cidr: '10.244.1.0/24', stateFile: join(dir, 'ipam.json') });
    const a = ipam.allocate({ containerId: 'c1', ifName: 'eth0' });
    assert.equal(a.ip, '10.244.1.1');
    assert.equal(ipam.allocate({ containerId: 'c1', ifName: 'eth0' }).ip, '10.244.1.1');
    assert.equal(ipam.allocate({ containerId: 'c2', ifName: 'eth0' }).ip, '10.244.1.2');
    assert.equal(ipam.capacity(), 254);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restart never hands out a live address twice', () => {
  const dir = tmp();
  try {
    const file = join(dir, 'ipam.json');
    const one = new Ipam({ cidr: '10.244.2.0/24', stateFile: file });
    const ips = new Set<string>();
    for (let i = 0; i < 5; i++) ips.add(one.allocate({ containerId: `c${i}`, ifName: 'eth0' }).ip);
    one.release('c2');
    const two = new Ipam({ cidr: '10.244.2.0/24', stateFile: file });
    assert.equal(two.list().length, 4);
    assert.equal(two.get('c3')?.ip, one.get('c3')?.ip);
    const next = two.allocate({ containerId: 'new', ifName: 'eth0' });
    assert.ok(!two.list().some((x) => x.ip === next.ip && x.containerId !== 'new'));
    // round-robin: the released address is not the next one handed out
    assert.equal(next.ip, '10.244.2.6');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exhaustion and wrap-around', () => {
  const dir = tmp();
  try {
    const ipam = new Ipam({ cidr: '10.0.0.0/30', stateFile: join(dir, 'ipam.json') });
    assert.equal(ipam.allocate({ containerId: 'a', ifName: 'eth0' }).ip, '10.0.0.1');
    assert.equal(ipam.allocate({ containerId: 'b', ifName: 'eth0' }).ip, '10.0.0.2');
    assert.throws(
      () => ipam.allocate({ containerId: 'c', ifName: 'eth0' }),
      (e: unknown) => e instanceof TendrilError && e.code === 'IPAM_EXHAUSTED',
    );
    ipam.release('a');
    assert.equal(ipam.allocate({ containerId: 'c', ifName: 'eth0' }).ip, '10.0.0.1');
    assert.equal(ipam.release('zzz'), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a changed CIDR keeps old allocations out of the pool; corrupt file is a clear error', () => {
  const dir = tmp();
  try {
    const file = join(dir, 'ipam.json');
    new Ipam({ cidr: '10.244.1.0/24', stateFile: file }).allocate({
      containerId: 'a',
      ifName: 'eth0',
    });
    const moved = new Ipam({ cidr: '10.244.9.0/24', stateFile: file });
    assert.equal(moved.list().length, 0);
    assert.equal(moved.stale().length, 1);
    writeFileSync(file, '{nope');
    assert.throws(
      () => new Ipam({ cidr: '10.244.1.0/24', stateFile: file }),
      /CorruptState|read IPAM state/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
