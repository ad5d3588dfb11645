/**
 * Who may do what in a cluster's mesh etcd, enforced by etcd's own roles
 * (users are client-certificate CNs):
 *
 *   root              (role root)         the cluster's syncer and kvstoremesh
 *   local-agent       (role local-agent)  read cilium/ (own state, cache, configs, canaries)
 *   remote-<cluster>.<grant>  (role remote)  read cilium/state/, cilium/cluster-config/, cilium/synced/,
 *                                          cilium/.heartbeat; write nothing (one user per connect grant)
 *
 * `applyMeshAccess` is idempotent: it creates what is missing, removes
 * remote-* users no longer allowed, and enables auth.
 */
import type { EtcdKVStore } from '../kvstore/etcd.js';
import {
  REMOTE_READ_PREFIXES,
  REMOTE_ROLE,
  remoteClusterUser,
  removeEtcdUser,
  setupEtcdAuth,
  type EtcdRoleSpec,
} from '../kvstore/etcd-auth.js';
import { HEARTBEAT_KEY } from './keys.js';

/** CN and etcd user of the local agents and operator. */
export const LOCAL_AGENT_USER = 'local-agent';
/** CN and etcd user of the clustermesh-apiserver itself. */
export const ROOT_USER = 'root';

/** The local agents' role: read everything under cilium/. */
export function localAgentRole(): EtcdRoleSpec {
  return { name: LOCAL_AGENT_USER, permissions: [{ prefix: 'cilium/', access: 'read' }] };
}

/**
 * The remote clusters' role: read cilium/state/, cilium/cluster-config/,
 * cilium/synced/ and the heartbeat. The heartbeat is granted as a prefix
 * (not one key) because a watch is a range request: etcd checks the watch's
 * whole range [cilium/.heartbeat, cilium/.heartbeaU) against the role.
 */
export function meshRemoteRole(): EtcdRoleSpec {
  return {
    name: REMOTE_ROLE,
    permissions: [
      ...REMOTE_READ_PREFIXES.map((prefix) => ({ prefix, access: 'read' as const })),
      { prefix: HEARTBEAT_KEY, access: 'read' },
    ],
  };
}

/**
 * Sets up roles and users so exactly `readerUsers` (the readers' etcd user
 * names = their client certificates' CNs, `remote-...`) may read this etcd,
 * then enables auth; every other `remote-*` user is deleted (its
 * certificates then authenticate as nobody). Call with the root client.
 * @throws KVStoreError from etcd.
 */
export async function applyMeshAccess(
  root: EtcdKVStore,
  readerUsers: string[],
): Promise<{ removed: string[] }> {
  const wanted = new Set(readerUsers);
  await setupEtcdAuth(root, {
    roles: [meshRemoteRole(), localAgentRole()],
    users: [
      { name: LOCAL_AGENT_USER, roles: [LOCAL_AGENT_USER] },
      ...[...wanted].map((cn) => remoteClusterUser(cn)),
    ],
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
