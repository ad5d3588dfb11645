/**
 * Entry point of the API forwarder daemon (run in the control plane's namespace):
 *   node --import tsx src/lab/forwarder-main.ts --listen 172.30.1.10:6443 --socket /path/api.sock
 * Only lab clusters created before issue 14 run it (their saved daemon specs);
 * `lab create` no longer starts it.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../util/log.js';
import { startForwarder } from './forwarder.js';
import { sleep } from './proc.js';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, socket: { type: 'string' } },
});
if (!values.listen || !values.socket) {
  process.stderr.write('usage: forwarder-main.ts --listen HOST:PORT --socket PATH\n');
  process.exit(2);
}
const i = values.listen.lastIndexOf(':');
const host = values.listen.slice(0, i);
const port = Number(values.listen.slice(i + 1));
const log = createLogger({ subsys: 'lab-api-forwarder' });
// The address may appear a moment after the namespace is made: retry listening briefly.
let fwd;
for (let attempt = 0; ; attempt++) {
  try {
    fwd = await startForwarder({ host, port, socketPath: values.socket, log });
    break;
  } catch (err) {
    if (attempt >= 50) throw err;
    await sleep(100);
  }
}
log.info('forwarding', { listen: values.listen, socket: values.socket });
const stop = () => void fwd.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
