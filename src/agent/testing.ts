/**
 * Fixtures of the agent's unit tests (not used by the agent itself).
 */
import { join } from 'node:path';
import type { AgentConfig } from './agent.js';

/**
 * The configuration of a test agent: node c1-worker (172.30.1.11, pod CIDR
 * 10.244.1.0/24) of cluster1 (ID 1), native routing, its state, API socket,
 * bpffs and cgroup paths all below DIR (a temporary directory of the test).
 */
export function testAgentConfig(dir: string): AgentConfig {
  return {
    node: 'c1-worker',
    nodeIP: '172.30.1.11',
    podCIDR: '10.244.1.0/24',
    clusterName: 'cluster1',
    clusterId: 1,
    routingMode: 'native',
    podMtu: 1500,
    lbAlgorithm: 'random',
    stateDir: dir,
    socketPath: join(dir, 'agent.sock'),
    bpffsDir: join(dir, 'bpf'),
    cgroupPath: join(dir, 'cg'),
  };
}
