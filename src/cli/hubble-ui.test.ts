import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { Command } from 'commander';
import { FlowPushQueue } from '../observe/ui-server.js';
import { forwardedToEcho } from '../observe/flow-fixtures.js';
import { addHubbleUiCommand, parseUiPort } from './hubble-ui.js';
import { buildProgram } from './main.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('hubble ui --port: bad values are rejected naming the flag', () => {
  assert.equal(parseUiPort('12000'), 12000);
  for (const bad of ['0', '70000', 'abc', '-1', '1.5'])
    assert.throws(() => parseUiPort(bad), /--port "[^"]+" is not a port number/);
});

test('hubble ui is registered under the hubble group', () => {
  const hubble = buildProgram().commands.find((c) => c.name() === 'hubble');
  assert.ok(hubble?.commands.some((c) => c.name() === 'ui'));
});

test('hubble ui serves the map from the relay flows on localhost and reports the stream ending', async () => {
  const flows = new FlowPushQueue();
  let signal: AbortSignal | undefined;
  const program = new Command('tendril').exitOverride();
  const hubble = program.command('hubble');
  addHubbleUiCommand(hubble, (o) => {
    signal = o.signal;
    return flows;
  });
  const port = await freePort();
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array, ...rest: never[]) => {
    if (typeof s === 'string' && s.startsWith('Hubble UI:')) {
      out.push(s);
      return true;
    }
    return write(s, ...rest);
  }) as typeof process.stdout.write;
  const run = program.parseAsync(['node', 'tendril', 'hubble', 'ui', '--port', String(port)]);
  try {
    flows.push(forwardedToEcho());
    let map: { nodes: { id: string }[] } = { nodes: [] };
    for (let i = 0; i < 50 && map.nodes.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      map = (await fetch(`http://127.0.0.1:${port}/api/map`)
        .then((r) => r.json())
        .catch(() => map)) as typeof map;
    }
    assert.ok(map.nodes.some((n) => n.id === 'cluster2/default/pod/client'));
    flows.end();
    await assert.rejects(run, /the relay ended the flow stream/);
    assert.equal(signal?.aborted, true);
  } finally {
    process.stdout.write = write;
  }
  assert.match(out.join(''), new RegExp(`Hubble UI: http://127.0.0.1:${port}/`));
});
