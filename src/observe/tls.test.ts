import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCA, issueClientCert, issueServerCert } from '../util/certs.js';
import { ObserverClient } from './client.js';
import { FlowRing } from './ring.js';
import { ObserverServer } from './server.js';
import { testFlow } from './testing.js';

test('the observer over TCP requires a client certificate from the mesh CA', async () => {
  const ca = await createCA();
  const other = await createCA({ commonName: 'someone else' });
  const srv = await issueServerCert(ca, { commonName: 'hubble-node' });
  const cli = await issueClientCert(ca, 'hubble-relay');
  const stranger = await issueClientCert(other, 'hubble-relay');
  const ring = new FlowRing(4);
  ring.push(testFlow(1));
  const server = new ObserverServer({ source: ring, nodeName: 'n1' });
  await server.listen({
    tcpAddress: '127.0.0.1:0',
    tls: { ca: ca.certPEM, cert: srv.certPEM, key: srv.keyPEM },
  });
  const address = server.addresses[0]!;
  assert.match(address, /^127\.0\.0\.1:\d+$/);
  await assert.rejects(
    server.listen.call(new ObserverServer({ source: ring, nodeName: 'x' }), {
      tcpAddress: '127.0.0.1:0',
    }),
    /without TLS/,
  );
  const good = new ObserverClient({
    address,
    tls: { ca: ca.certPEM, cert: cli.certPEM, key: cli.keyPEM },
  });
  const bad = new ObserverClient({
    address,
    tls: { ca: ca.certPEM, cert: stranger.certPEM, key: stranger.keyPEM },
    timeoutMs: 3000,
  });
  try {
    const st = await good.serverStatus();
    assert.equal(st.seenFlows, 1);
    const nodes = await good.getNodes();
    assert.equal(nodes[0]!.tls?.enabled, true);
    await assert.rejects(bad.serverStatus(), /hubble ServerStatus/);
  } finally {
    good.close();
    bad.close();
    await server.close();
  }
});
