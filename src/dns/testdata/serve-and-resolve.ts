/**
 * Helper of resolver.privileged.test.ts, run inside a network namespace by
 * `ip netns exec` (which also bind-mounts /etc/netns/<ns>/resolv.conf): serves
 * cluster DNS on 127.0.0.1:53 and resolves names with glibc (getent), the way
 * a pod's programs do. Prints one JSON line: name -> addresses (or null).
 */
import { execFile } from 'node:child_process';
import { svc } from '../../services/fixtures.js';
import { ServiceRecordStore } from '../records.js';
import { startDNSServer } from '../server.js';

const store = new ServiceRecordStore();
store.upsertService(svc('echo-service-c1', { ip: '10.96.123.45' }));
store.upsertService(svc('kube-dns', { ns: 'kube-system', ip: '10.96.0.10' }));
const server = await startDNSServer({ host: '127.0.0.1', port: 53, source: store });
const names = process.argv.slice(2);
const out: Record<string, string[] | null> = {};
for (const name of names) {
  out[name] = await new Promise((resolve) => {
    execFile('getent', ['ahostsv4', name], { timeout: 10_000 }, (err, stdout) => {
      if (err) return resolve(null);
      resolve([
        ...new Set(
          stdout
            .split('\n')
            .filter(Boolean)
            .map((l) => l.split(/\s+/)[0]!),
        ),
      ]);
    });
  });
}
process.stdout.write(JSON.stringify(out) + '\n');
await server.close();
