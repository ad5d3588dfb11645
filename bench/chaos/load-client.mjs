// Bounded HTTP load client, run inside a lab pod's network namespace by bench/chaos.
// argv: URL DURATION_MS MAX_REQUESTS. Two loops: a new connection per request, and one
// keep-alive connection. No retries: every request that fails is counted. Prints JSON.
import http from 'node:http';

const [url, durationMs, maxRequests] = [
  process.argv[2],
  Number(process.argv[3]),
  Number(process.argv[4]),
];
const deadline = Date.now() + durationMs;
const out = { requests: 0, ok: 0, failed: 0, newConn: 0, keepAlive: 0, failures: [] };
const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });

function one(agent) {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = http.get(
      url,
      { agent, timeout: 10_000, headers: agent ? {} : { connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve(
            res.statusCode >= 200 && res.statusCode < 300 ? undefined : `HTTP ${res.statusCode}`,
          ),
        );
        res.on('error', (e) => resolve(`response: ${e.code ?? e.message}`));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout after 10 s')));
    req.on('error', (e) =>
      resolve(
        `${e.code ?? e.message}${req.reusedSocket ? ' (reused socket)' : ''} after ${Date.now() - started} ms`,
      ),
    );
  });
}

async function loop(agent) {
  while (Date.now() < deadline && out.requests < maxRequests) {
    out.requests++;
    if (agent) out.keepAlive++;
    else out.newConn++;
    const err = await one(agent);
    if (err === undefined) out.ok++;
    else {
      out.failed++;
      if (out.failures.length < 50)
        out.failures.push({ at: new Date().toISOString(), keepAlive: !!agent, err });
    }
  }
}
await Promise.all([loop(false), loop(keep)]);
keep.destroy();
process.stdout.write(JSON.stringify(out) + '\n');
