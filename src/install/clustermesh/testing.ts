/**
 * Helpers of the mesh setup's tests and benchmarks (not used by install).
 */
import type { PrepareMeshOptions } from './setup.js';

/**
 * prepareMesh's options for a cluster whose etcd runs on this machine: lab
 * cluster LAB, cluster NAME with ID, NodePort, listening on 127.0.0.1, URL
 * (default https://127.0.0.1:2379) as the etcd client URL, access endpoint
 * and local endpoint, and an API server URL nothing answers on. EXTRA adds
 * options or overrides these.
 */
export function loopbackMeshOptions(
  lab: string,
  name: string,
  id: number,
  url = 'https://127.0.0.1:2379',
  extra: Partial<PrepareMeshOptions> = {},
): PrepareMeshOptions {
  return {
    labCluster: lab,
    clusterName: name,
    clusterId: id,
    serviceType: 'NodePort',
    listenIP: '127.0.0.1',
    etcdClientURLs: [url],
    accessEndpoints: [url],
    localEndpoint: url,
    apiServerURL: 'http://127.0.0.1:1',
    ...extra,
  };
}
