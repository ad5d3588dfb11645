import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from './log.js';

describe('createLogger', () => {
  it('leaves out fields that are undefined, in text as in JSON', () => {
    const lines: string[] = [];
    const text = createLogger({ daemon: 'd' }, { sink: (l) => lines.push(l) });
    text.warn('remote cluster disconnected', { error: undefined, remote: 'c001' });
    assert.match(lines[0]!, / WARN  remote cluster disconnected daemon=d remote=c001$/);
    const json = createLogger({}, { json: true, sink: (l) => lines.push(l) });
    json.warn('x', { error: undefined, n: 1 });
    assert.deepEqual(Object.keys(JSON.parse(lines[1]!)), ['time', 'level', 'msg', 'n']);
  });
});
