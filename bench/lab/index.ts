/**
 * `npm run bench -- lab [--objects N] [--only SECTION]`
 *
 * Lab benchmark, in sections; each section returns figures and the report
 * holds them all (bench/results/lab.json). Add a section by appending to
 * SECTIONS (the lab's create/delete figures live in their own section).
 *
 * Section "api" (the lab API server as a separate process, as in a lab):
 *   watch_latency_p99_ms   from sending a create to a watcher seeing its ADDED
 *                          event, over N objects (default 10,000) created 16 at a time
 *   watch_latency_p50_ms
 *   create_objects_per_s   creates acknowledged per second during that run
 *   watch_latency_serial_p99_ms / _p50_ms  the same, for 1,000 updates sent one
 *                          at a time (the write -> watch path without queueing)
 *   list_objects_per_s     objects returned per second by full LISTs of the N objects
 * Section "runtime" (bench/lab/runtime.ts, root only): create_2node_s, delete_s.
 * Section "api-etcd": the same figures (suffix _etcd) with --store etcd (a real
 * etcd started for the run), over N/5 objects to keep the run short.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KubeClient } from '../../src/k8s/client.js';
import type { KubeObject } from '../../src/k8s/objects.js';
import { freePort, startEtcd, type EtcdServer } from '../../src/kvstore/etcd-server.js';
import { percentile, report, type Figure } from '../lib/report.js';
import { measureLabRuntime } from './runtime.js';

/** Options every section gets. */
export interface BenchOptions {
  objects: number;
}

/** A benchmark section: a name and a function returning its figures. */
export interface BenchSection {
  name: string;
  run(options: BenchOptions): Promise<Figure[]>;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts the API server daemon (src/lab/apiserver/main.ts) in its own process; returns its URL and a stop function. */
export async function spawnApiServer(options: {
  store: 'disk' | 'etcd';
  etcdEndpoints?: string[];
}): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-bench-apiserver-'));
  const args = [
    '--import',
    'tsx',
    join(root, 'src/lab/apiserver/main.ts'),
    '--cluster',
    'bench',
    '--data-dir',
    dir,
    '--listen',
    '127.0.0.1:0',
  ];
  if (options.store === 'etcd')
    args.push('--store', 'etcd', '--etcd-endpoints', options.etcdEndpoints!.join(','));
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TENDRIL_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const info = join(dir, 'apiserver.json');
  for (let i = 0; i < 300 && !existsSync(info); i++) {
    if (child.exitCode !== null) throw new Error(`API server exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!existsSync(info)) throw new Error(`API server did not start: ${stderr}`);
  const { url } = JSON.parse(readFileSync(info, 'utf8')) as { url: string };
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function apiSection(store: 'disk' | 'etcd'): BenchSection {
  return {
    name: store === 'disk' ? 'api' : 'api-etcd',
    async run({ objects: requested }) {
      const objects = store === 'disk' ? requested : Math.max(100, Math.floor(requested / 5));
      let etcd: EtcdServer | undefined;
      let etcdDir: string | undefined;
      if (store === 'etcd') {
        etcdDir = mkdtempSync(join(tmpdir(), 'tendril-bench-etcd-'));
        etcd = await startEtcd({
          name: 'bench',
          dataDir: etcdDir,
          clientUrls: [`http://127.0.0.1:${await freePort()}`],
        });
      }
      const server = await spawnApiServer({ store, etcdEndpoints: etcd?.endpoints });
      const client = new KubeClient({ server: server.url });
      const watcher = new KubeClient({ server: server.url });
      try {
        const sent = new Map<string, number>();
        const latencies: number[] = [];
        let allSeen: () => void = () => {};
        const done = new Promise<void>((r) => (allSeen = r));
        const start = (await client.list('cilium.io/v2', 'CiliumIdentity')).metadata
          .resourceVersion;
        const w = await watcher.watch(
          'cilium.io/v2',
          'CiliumIdentity',
          { resourceVersion: start },
          (ev) => {
            if (ev.type !== 'ADDED') return;
            const t0 = sent.get(ev.object.metadata.name!);
            if (t0 === undefined) return;
            latencies.push(performance.now() - t0);
            if (latencies.length === objects) allSeen();
          },
        );
        const t0 = performance.now();
        let next = 0;
        const worker = async () => {
          while (next < objects) {
            const i = next++;
            const name = String(100000 + i);
            const obj: KubeObject = {
              apiVersion: 'cilium.io/v2',
              kind: 'CiliumIdentity',
              metadata: {
                name,
                labels: { 'io.kubernetes.pod.namespace': 'default', bench: String(i % 10) },
              },
              'security-labels': {
                'k8s:app': `app-${i}`,
                'k8s:io.kubernetes.pod.namespace': 'default',
              },
            };
            sent.set(name, performance.now());
            await client.create(obj);
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
        const createS = (performance.now() - t0) / 1000;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          done,
          new Promise(
            (_, rej) =>
              (timer = setTimeout(
                () => rej(new Error(`watcher saw ${latencies.length}/${objects} events`)),
                30_000,
              )),
          ),
        ]);
        clearTimeout(timer);
        w.close();
        // One write at a time: the write -> watch path without queueing.
        const serial: number[] = [];
        let pendingName = '';
        let pendingT0 = 0;
        let seenOne: () => void = () => {};
        const w2 = await watcher.watch(
          'cilium.io/v2',
          'CiliumIdentity',
          {
            resourceVersion: (
              await client.list('cilium.io/v2', 'CiliumIdentity', {
                fieldSelector: 'metadata.name=0',
              })
            ).metadata.resourceVersion,
          },
          (ev) => {
            if (ev.type === 'MODIFIED' && ev.object.metadata.name === pendingName) {
              serial.push(performance.now() - pendingT0);
              seenOne();
            }
          },
        );
        const serialWrites = Math.min(1000, objects);
        for (let i = 0; i < serialWrites; i++) {
          pendingName = String(100000 + i);
          const seen = new Promise<void>((r) => (seenOne = r));
          pendingT0 = performance.now();
          await client.patch('cilium.io/v2', 'CiliumIdentity', pendingName, {
            metadata: { labels: { serial: String(i) } },
          });
          let guard: NodeJS.Timeout | undefined;
          await Promise.race([
            seen,
            new Promise(
              (_, rej) =>
                (guard = setTimeout(() => rej(new Error(`no watch event for update ${i}`)), 5000)),
            ),
          ]);
          clearTimeout(guard);
        }
        w2.close();
        // Full lists.
        const rounds = 5;
        let listed = 0;
        const l0 = performance.now();
        for (let r = 0; r < rounds; r++)
          listed += (await client.list('cilium.io/v2', 'CiliumIdentity')).items.length;
        const listS = (performance.now() - l0) / 1000;
        if (listed !== rounds * objects)
          throw new Error(`listed ${listed}, expected ${rounds * objects}`);
        const suffix = store === 'etcd' ? '_etcd' : '';
        return [
          {
            name: `watch_latency_p99_ms${suffix}`,
            value: percentile(latencies, 99),
            unit: 'ms',
            note: `${objects} creates, 16 in flight, ${store} store`,
          },
          {
            name: `watch_latency_p50_ms${suffix}`,
            value: percentile(latencies, 50),
            unit: 'ms',
            note: 'same run',
          },
          {
            name: `watch_latency_serial_p99_ms${suffix}`,
            value: percentile(serial, 99),
            unit: 'ms',
            note: `${serialWrites} updates one at a time (no queueing)`,
          },
          {
            name: `watch_latency_serial_p50_ms${suffix}`,
            value: percentile(serial, 50),
            unit: 'ms',
            note: 'same run',
          },
          {
            name: `create_objects_per_s${suffix}`,
            value: objects / createS,
            unit: 'obj/s',
            note: 'same run',
          },
          {
            name: `list_objects_per_s${suffix}`,
            value: listed / listS,
            unit: 'obj/s',
            note: `${rounds} full LISTs of ${objects} objects`,
          },
        ];
      } finally {
        client.close();
        watcher.close();
        await server.stop();
        await etcd?.stop();
        if (etcdDir) rmSync(etcdDir, { recursive: true, force: true });
      }
    },
  };
}

/** The sections, in run order. */
/** Lab create/delete figures (bench/lab/runtime.ts); needs root, skipped otherwise. */
const runtimeSection: BenchSection = {
  name: 'runtime',
  async run() {
    if (process.getuid?.() !== 0) {
      console.log('section runtime skipped: needs root (network namespaces, cgroups)');
      return [];
    }
    return measureLabRuntime();
  },
};

export const SECTIONS: BenchSection[] = [runtimeSection, apiSection('disk'), apiSection('etcd')];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { objects: { type: 'string', default: '10000' }, only: { type: 'string' } },
    strict: true,
  });
  const options: BenchOptions = { objects: Number(values.objects) };
  const figures: Figure[] = [];
  for (const s of SECTIONS) {
    if (values.only && values.only !== s.name) continue;
    console.log(`running section ${s.name}...`);
    figures.push(...(await s.run(options)));
  }
  report('lab', figures);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
