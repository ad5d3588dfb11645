import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EventFlags,
  EventOff,
  EventType,
  decodeEvent,
  encodeEvent,
  eventsRingSpec,
  type DatapathEvent,
} from './events.js';

test('events: a packet record and a socket record encode and decode field for field', () => {
  const pkt: DatapathEvent = {
    type: EventType.Drop,
    subType: 133,
    flags: EventFlags.Egress | EventFlags.Denied,
    proto: 6,
    endpoint: 42,
    ktimeNs: 123_456_789_012,
    saddr: '10.244.1.5',
    daddr: '10.96.0.10',
    sport: 40000,
    dport: 8080,
    identity: 0x010100,
    ruleId: 0xdeadbeef,
    tcpFlags: 0x12,
  };
  const b = encodeEvent(pkt);
  assert.equal(b.length, EventOff.packetSize);
  assert.equal(b[EventOff.saddr], 10, 'addresses in network order');
  assert.equal(b.readUInt16BE(EventOff.dport), 8080);
  assert.deepEqual(decodeEvent(b), pkt);
  const sock: DatapathEvent = {
    ...pkt,
    type: EventType.TraceSock,
    subType: 2,
    flags: 0,
    endpoint: 0,
    saddr: '0.0.0.0',
    sport: 0,
    origDaddr: '10.96.0.20',
    origDport: 80,
    cookie: 0x1234567890n,
    cgroupId: 777n,
  };
  const s = encodeEvent(sock);
  assert.equal(s.length, EventOff.sockSize);
  assert.deepEqual(decodeEvent(s), sock);
});

test('events: short and unknown records are rejected with EVENT_BAD_RECORD', () => {
  assert.throws(() => decodeEvent(Buffer.alloc(12)), { code: 'EVENT_BAD_RECORD' });
  const b = Buffer.alloc(40);
  b[0] = 77;
  assert.throws(() => decodeEvent(b), /unknown type 77/);
  const s = Buffer.alloc(40);
  s[0] = EventType.TraceSock;
  assert.throws(() => decodeEvent(s), /want 64/);
  assert.throws(() => eventsRingSpec(5000), /power of 2/);
});
