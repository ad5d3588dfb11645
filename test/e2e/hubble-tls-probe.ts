/**
 * Asks one Hubble observer (a node's :4244 or a relay's :4245) for
 * ServerStatus over mutual TLS with the given files and prints one JSON line:
 * `{"ok":true,"numFlows":N}` or `{"ok":false,"error":"..."}`. The hubble
 * tests run it inside a lab node's network namespace (nsenter), where the
 * lab's addresses are reachable:
 *
 *   node --import tsx test/e2e/hubble-tls-probe.ts ADDRESS CA CERT KEY
 */
import { readFileSync } from 'node:fs';
import { ObserverClient } from '../../src/observe/client.js';

const [address, ca, cert, key] = process.argv.slice(2);
if (!address || !ca || !cert || !key) {
  process.stderr.write('usage: hubble-tls-probe.ts ADDRESS CA CERT KEY\n');
  process.exit(2);
}
const client = new ObserverClient({
  address,
  tls: {
    ca: readFileSync(ca, 'utf8'),
    cert: readFileSync(cert, 'utf8'),
    key: readFileSync(key, 'utf8'),
  },
  timeoutMs: 5000,
});
try {
  const s = await client.serverStatus();
  process.stdout.write(JSON.stringify({ ok: true, numFlows: s.numFlows }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: (err as Error).message }) + '\n');
} finally {
  client.close();
}
