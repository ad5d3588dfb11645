/**
 * Who may do what in a cluster's mesh etcd, enforced by etcd's own roles
 * (users are client-certificate CNs):
 *
 *   root              (role root)         the cluster's syncer and kvstoremesh
 *   local-agent       (role local-agent)  read cilium/ (own state, cache, configs, canaries)
 *   remote-<cluster>  (role remote)       read cilium/state/, cilium/cluster-config/, cilium/synced/,
 *                                          cilium/.heartbeat; write nothing
 *
 * `applyMeshAccess` is idempotent: it creates what is missing, removes
 * remote-* users no longer allowed, and enables auth.
 */
import type { EtcdKVStore } from '../kvstore/etcd.js';
import { remoteClusterUser, remoteReadOnlyRole, removeEtcdUser, setupEtcdAuth, type EtcdRoleSpec } from '../kvstore/etcd-auth.js';
import { remoteClientCN } from './certs.js';

/** CN and etcd user of the local agents and operator. */
export const LOCAL_AGENT_USER = 'local-agent';
/** CN and etcd user of the clustermesh-apiserver itself. */
export const ROOT_USER = 'root';

/** The local agents' role: read everything under cilium/. */
export function localAgentRole(): EtcdRoleSpec {
  return { name: LOCAL_AGENT_USER, permissions: [{ prefix: 'cilium/', access: 'read' }] };
}

/**
 * Sets up roles and users so exactly `readers` (remote cluster names) may
 * read this etcd, then enables auth. Call with the root client.
 * @throws KVStoreError from etcd.
 */
export async function applyMeshAccess(root: EtcdKVStore, readers: string[]): Promise<{ removed: string[] }> {
  const wanted = new Set(readers.map(remoteClientCN));
  await setupEtcdAuth(root, {
    roles: [remoteReadOnlyRole(), localAgentRole()],
    users: [{ name: LOCAL_AGENT_USER, roles: [LOCAL_AGENT_USER] }, ...[...wanted].map((cn) => remoteClusterUser(cn))],
  });
  const removed: string[] = [];
  const users = await root.client.getUsers();
  for (const u of users) {
    if (u.name.startsWith('remote-') && !wanted.has(u.name)) {
      await removeEtcdUser(root, u.name);
      removed.push(u.name);
    }
  }
  return { removed };
}
