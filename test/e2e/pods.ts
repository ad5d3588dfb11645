/**
 * Pod and policy manifests shared by the lab e2e tests: the echo server pod
 * the policy and Hubble tests reach, the policy that admits app=client to
 * it, and a busybox pod that only sleeps (a netns and cgroup in which a test
 * runs its own programs, see inPodCommand in lab-fixture.ts).
 */
import type { KubeObject } from '../../src/k8s/objects.js';

/**
 * Pod `server` (default namespace, labelled app=server): the echo server
 * (mendhak/http-https-echo) on port 8080, named `http`.
 */
export const ECHO_SERVER_POD = `apiVersion: v1
kind: Pod
metadata:
  name: server
  labels: {app: server}
spec:
  containers:
    - name: echo
      image: mendhak/http-https-echo:28
      ports: [{containerPort: 8080, name: http}]
`;

/**
 * CiliumNetworkPolicy `server-from-client`: selects app=server (so its
 * ingress is default-deny) and allows app=client to its `http` port.
 */
export const SERVER_FROM_CLIENT_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-from-client
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: http, protocol: TCP}]}]
`;

/** Pod NAME of namespace NS with LABELS: one busybox container that sleeps for 10 hours. */
export function sleepingPod(ns: string, name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: {
      containers: [{ name: 'sleep', image: 'busybox', command: ['sleep', '36000'] }],
    },
  };
}
