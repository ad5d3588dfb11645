/**
 * Test helpers for the lab API server: start one on 127.0.0.1 with a random
 * port and a temporary data directory, and remove everything afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../k8s/client.js';
import type { KubeObject } from '../../k8s/objects.js';
import { startApiServer, type ApiServerOptions, type RunningApiServer } from './apiserver.js';
import { resourceForPath } from '../../k8s/resources.js';
import { Registry } from './registry.js';
import { ApiHttpServer, type ApiHttpServerOptions } from './server.js';
import { DiskPersistence } from './storage.js';

/** A test API server with its client. */
export interface TestApiServer {
  server: RunningApiServer;
  client: KubeClient;
  dataDir: string;
  /** Stops the server (keeps the data directory, for restart tests). */
  stop(): Promise<void>;
  /** Stops the server and removes the data directory. */
  cleanup(): Promise<void>;
}

/** Starts an API server for a test. */
export async function startTestApiServer(
  options: Partial<ApiServerOptions> & { dataDir?: string } = {},
): Promise<TestApiServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tendril-apiserver-test-'));
  const server = await startApiServer({ cluster: 'test', port: 0, ...options, dataDir });
  const client = new KubeClient({ server: server.url });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    client.close();
    await server.close();
  };
  return {
    server,
    client,
    dataDir,
    stop,
    async cleanup() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The REST layer of the API server alone, as startBareApiServer made it. */
export interface BareApiServer {
  registry: Registry;
  http: ApiHttpServer;
  /** Its port on 127.0.0.1. */
  port: number;
  /** Stops the HTTP server and the registry and removes the store's directory. */
  close(): Promise<void>;
}

/**
 * The API server's REST layer without controllers, for tests and the fuzz
 * benchmark: a Registry stored in a new directory `tendril-TAG-*` below
 * PARENT (default the temp dir), holding namespace `default`, served by an
 * ApiHttpServer with OPTIONS on a random port of 127.0.0.1.
 */
export async function startBareApiServer(
  tag: string,
  options: Omit<ApiHttpServerOptions, 'registry'> = {},
  parent = tmpdir(),
): Promise<BareApiServer> {
  const dir = mkdtempSync(join(parent, `tendril-${tag}-`));
  const registry = new Registry({ persistence: new DiskPersistence(join(dir, 'store')) });
  await registry.start();
  await registry.create(resourceForPath('', 'v1', 'namespaces')!, undefined, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'default' },
  });
  const http = new ApiHttpServer({ registry, ...options });
  const port = await http.listenTcp('127.0.0.1', 0);
  return {
    registry,
    http,
    port,
    async close() {
      await http.close();
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Ready worker Node object as a kubelet would register it. */
export function fakeNode(
  name: string,
  options: { ready?: boolean; controlPlane?: boolean; ip?: string } = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        ...(options.controlPlane ? { 'node-role.kubernetes.io/control-plane': '' } : {}),
      },
    },
    spec: options.controlPlane
      ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] }
      : {},
    status: {
      conditions: [
        {
          type: 'Ready',
          status: options.ready === false ? 'False' : 'True',
          reason: 'KubeletReady',
        },
      ],
      addresses: [{ type: 'InternalIP', address: options.ip ?? '172.30.1.11' }],
    },
  };
}
