import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createCA, issueServerCert } from '../util/certs.js';
import { HubbleTLSFileError, readMutualTLSFiles } from './tls-files.js';
import { HUBBLE_NODE_TLS_FIX, startNodeObserver } from './agent-hubble.js';
import { FlowRing } from './ring.js';
import { createLogger } from '../util/log.js';

const FIX = 're-run `tendril install`';

async function files() {
  const dir = mkdtempSync(join(tmpdir(), 'hubble-tls-'));
  const ca = await createCA();
  const other = await createCA({ commonName: 'another CA' });
  const good = await issueServerCert(ca, { commonName: 'n1' });
  const stranger = await issueServerCert(other, { commonName: 'n1' });
  const p = (n: string, text: string) => {
    const f = join(dir, n);
    writeFileSync(f, text);
    return f;
  };
  return {
    dir,
    ca: p('ca.crt', ca.certPEM),
    cert: p('server.crt', good.certPEM),
    key: p('server.key', good.keyPEM),
    strangerCert: p('stranger.crt', stranger.certPEM),
    strangerKey: p('stranger.key', stranger.keyPEM),
    junk: p('junk.pem', 'not a certificate\n'),
  };
}

function rejects(fn: () => unknown, file: string, re: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HubbleTLSFileError, String(err));
    assert.equal(err.code, 'HUBBLE_TLS_FILE');
    assert.equal(err.file, file);
    assert.match(err.message, re);
    assert.ok(err.message.includes(file), `the message names ${file}: ${err.message}`);
    assert.equal(err.hint, FIX);
    return true;
  });
}

test('readMutualTLSFiles: good files load; each bad file is named with the fix', async () => {
  const f = await files();
  try {
    const tls = readMutualTLSFiles({ caFile: f.ca, certFile: f.cert, keyFile: f.key }, FIX);
    assert.match(tls.cert, /BEGIN CERTIFICATE/);
    const missing = join(f.dir, 'nope.crt');
    rejects(
      () => readMutualTLSFiles({ caFile: f.ca, certFile: missing, keyFile: f.key }, FIX),
      missing,
      /cannot read the certificate .*no such file/,
    );
    rejects(
      () => readMutualTLSFiles({ caFile: f.junk, certFile: f.cert, keyFile: f.key }, FIX),
      f.junk,
      /is not a PEM certificate/,
    );
    rejects(
      () => readMutualTLSFiles({ caFile: f.ca, certFile: f.cert, keyFile: f.junk }, FIX),
      f.junk,
      /is not a PEM private key/,
    );
    rejects(
      () => readMutualTLSFiles({ caFile: f.ca, certFile: f.cert, keyFile: f.strangerKey }, FIX),
      f.strangerKey,
      /does not belong to the certificate/,
    );
    rejects(
      () =>
        readMutualTLSFiles({ caFile: f.ca, certFile: f.strangerCert, keyFile: f.strangerKey }, FIX),
      f.strangerCert,
      /signed by a different CA/,
    );
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('the relay daemon refuses to start with a key of another certificate, naming the file', async () => {
  const f = await files();
  try {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'src/observe/relay-main.ts'),
        '--kubeconfig',
        join(f.dir, 'unused.yaml'),
        '--node-tls-port',
        '4244',
        '--tls-ca',
        f.ca,
        '--tls-cert',
        f.cert,
        '--tls-key',
        f.strangerKey,
      ],
      { cwd: root, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(f.strangerKey), r.stderr);
    assert.match(r.stderr, /does not belong to the certificate/);
    assert.match(r.stderr, /tendril install/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('a node observer with a bad key keeps its socket, leaves :4244 closed and says why', async () => {
  const f = await files();
  const lines: string[] = [];
  const problems: Array<{ cause: string; hint?: string }> = [];
  const server = await startNodeObserver(
    {
      enabled: true,
      socketPath: join(f.dir, 'hubble.sock'),
      listenAddress: '127.0.0.1:0',
      tlsCertFile: f.cert,
      tlsKeyFile: f.strangerKey,
      tlsClientCAFile: f.ca,
    },
    {
      source: new FlowRing(4),
      nodeName: 'n1',
      logger: createLogger({}, { sink: (l) => lines.push(l) }),
      onTLSProblem: (p) => problems.push(p),
    },
  );
  try {
    assert.deepEqual(server?.addresses, [`unix:${join(f.dir, 'hubble.sock')}`]);
    assert.equal(problems.length, 1);
    assert.ok(problems[0]!.cause.includes(f.strangerKey), problems[0]!.cause);
    assert.match(problems[0]!.cause, /127\.0\.0\.1:0 is not served/);
    assert.equal(problems[0]!.hint, HUBBLE_NODE_TLS_FIX);
    assert.ok(lines.some((l) => l.includes('ERROR') && l.includes(f.strangerKey)));
  } finally {
    await server?.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});
