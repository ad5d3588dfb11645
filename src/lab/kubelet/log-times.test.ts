import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  LineTimesReader,
  LogTimeIndexer,
  parseRfc3339Nanos,
  readLineTimes,
  rfc3339Nano,
  timeAt,
  timesPath,
  wallNanos,
} from './log-times.js';

const dir = mkdtempSync(join(tmpdir(), 'tendril-logtimes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('log line times', () => {
  it('formats and parses RFC 3339 with nanoseconds as Go does', () => {
    const t = 1_765_000_000_123_456_789n;
    assert.equal(rfc3339Nano(t), '2025-12-06T05:46:40.123456789Z');
    assert.equal(rfc3339Nano(1_765_000_000_120_000_000n), '2025-12-06T05:46:40.12Z');
    assert.equal(rfc3339Nano(1_765_000_000_000_000_000n), '2025-12-06T05:46:40Z');
    assert.equal(parseRfc3339Nanos('2025-12-06T05:46:40.123456789Z'), t);
    assert.equal(parseRfc3339Nanos('2025-12-06T06:46:40.12+01:00'), 1_765_000_000_120_000_000n);
    assert.equal(parseRfc3339Nanos('2025-12-06 05:46:40'), undefined);
    const now = wallNanos();
    assert.ok(Math.abs(Number(now / 1_000_000n) - Date.now()) < 1000);
  });

  it('stamps each new line with the time it was seen, continuing partial lines', () => {
    const log = join(dir, 'a.log');
    writeFileSync(log, '');
    let clock = 1000n;
    const ix = new LogTimeIndexer(log, () => clock);
    ix.start();
    appendFileSync(log, 'one\ntw');
    ix.scan();
    clock = 2000n;
    appendFileSync(log, 'o\nthree\n');
    ix.scan();
    clock = 3000n;
    appendFileSync(log, 'four\n');
    ix.stop();
    assert.equal(readFileSync(timesPath(log), 'utf8'), '0 1000\n4 1000\n8 2000\n14 3000\n');
    const t = readLineTimes(log);
    assert.equal(timeAt(t, 4), 1000n);
    assert.equal(timeAt(t, 8), 2000n);
    assert.equal(timeAt(t, 5), undefined);
    // a new indexer (a restarted kubelet) resumes after the last record
    clock = 4000n;
    appendFileSync(log, 'five\n');
    const again = new LogTimeIndexer(log, () => clock);
    again.start();
    again.stop();
    assert.equal(
      readFileSync(timesPath(log), 'utf8'),
      '0 1000\n4 1000\n8 2000\n14 3000\n19 4000\n',
    );
  });

  it('starts over when the log is replaced by a shorter one', () => {
    const log = join(dir, 'b.log');
    writeFileSync(log, 'aaaa\nbbbb\n');
    const ix = new LogTimeIndexer(log, () => 5n);
    ix.start();
    writeFileSync(log, 'c\n');
    ix.stop();
    assert.deepEqual(readLineTimes(log).offsets, [0, 5, 0]);
  });

  it('picks up a growing index incrementally (a torn last record waits)', () => {
    const log = join(dir, 'c.log');
    writeFileSync(timesPath(log), '0 10\n6 2');
    const r = new LineTimesReader(log);
    r.refresh();
    assert.deepEqual(r.times.offsets, [0]);
    appendFileSync(timesPath(log), '0\n12 30\n');
    assert.equal(r.at(6), 20n);
    assert.equal(r.at(12), 30n);
    assert.equal(r.at(13), undefined);
  });

  it('sees lines within milliseconds through the file watch', async () => {
    const log = join(dir, 'd.log');
    writeFileSync(log, '');
    const ix = new LogTimeIndexer(log);
    ix.start();
    try {
      const before = wallNanos();
      appendFileSync(log, 'hello\n');
      for (let i = 0; i < 100 && readLineTimes(log).offsets.length === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      const t = readLineTimes(log);
      assert.deepEqual(t.offsets, [0]);
      assert.ok(t.nanos[0]! >= before);
    } finally {
      ix.stop();
    }
  });
});
