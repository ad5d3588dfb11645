/**
 * etcd's own access control for the mesh: users, roles with key-prefix
 * permissions, and auth enabling, set up over the etcd3 client. With
 * `--client-cert-auth` on the server and auth enabled, etcd 3.4 takes the
 * user name from the client certificate's CN, so "cluster2 may only read
 * cilium/state/ of cluster1" is enforced by giving cluster2 a certificate
 * with CN `remote-cluster2` and binding that user to a read-only role.
 *
 * All operations are idempotent: running the setup again changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { Range, type Etcd3 } from 'etcd3';
import { EtcdKVStore, wrapError } from './etcd.js';

/** One permission of a role: on a key prefix, or on one exact key. */
export type EtcdPermissionSpec = ({ prefix: string } | { key: string }) & {
  access: 'read' | 'write' | 'readwrite';
};

export interface EtcdRoleSpec {
  name: string;
  permissions: EtcdPermissionSpec[];
}

export interface EtcdUserSpec {
  /** User name; for certificate auth, the client certificate's CN. */
  name: string;
  /** Password for user/password auth; omitted: a certificate-only user (random password nobody knows). */
  password?: string;
  roles: string[];
}

export interface EtcdAuthSetup {
  /**
   * Password of the `root` user (created with the `root` role if absent).
   * Omit when root authenticates by a client certificate with CN "root".
   */
  rootPassword?: string;
  roles?: EtcdRoleSpec[];
  users?: EtcdUserSpec[];
  /** Enable authentication at the end (default true). */
  enable?: boolean;
}

/** Role name remote clusters are bound to. */
export const REMOTE_ROLE = 'remote';

/** What a remote cluster may read of another cluster's etcd: its state, config, canaries and heartbeat. */
export const REMOTE_READ_PREFIXES: readonly string[] = [
  'cilium/state/',
  'cilium/cluster-config/',
  'cilium/synced/',
];
/** Exact keys a remote cluster may read. */
export const REMOTE_READ_KEYS: readonly string[] = ['cilium/.heartbeat'];

/**
 * The role for remote clusters: read-only on the exported prefixes, no write
 * anywhere (etcd denies whatever no role grants).
 */
export function remoteReadOnlyRole(name = REMOTE_ROLE): EtcdRoleSpec {
  return {
    name,
    permissions: [
      ...REMOTE_READ_PREFIXES.map((prefix) => ({ prefix, access: 'read' as const })),
      ...REMOTE_READ_KEYS.map((key) => ({ key, access: 'read' as const })),
    ],
  };
}

/** A certificate-authenticated user bound to the remote role (name = its certificate's CN). */
export function remoteClusterUser(commonName: string, role = REMOTE_ROLE): EtcdUserSpec {
  return { name: commonName, roles: [role] };
}

/**
 * Creates roles and users, grants permissions, ensures the `root` user, and
 * enables auth. Call it as root (before auth is on: any client; after: the
 * root certificate or password).
 * @throws KVStoreError (e.g. KVSTORE_PERMISSION_DENIED when not called as root once auth is on).
 */
export async function setupEtcdAuth(
  target: Etcd3 | EtcdKVStore,
  setup: EtcdAuthSetup,
): Promise<void> {
  const { client, endpoints } = unwrap(target);
  const step = async <T>(what: string, fn: () => Promise<T>) => {
    try {
      return await fn();
    } catch (err) {
      throw wrapError(err, endpoints, `etcd auth setup: ${what}`);
    }
  };

  const existingRoles = new Set(
    (await step('list roles', () => client.getRoles())).map((r) => r.name),
  );
  const existingUsers = new Set(
    (await step('list users', () => client.getUsers())).map((u) => u.name),
  );

  if (!existingRoles.has('root')) {
    await step('create role root', () => client.role('root').create());
    existingRoles.add('root');
  }
  if (!existingUsers.has('root')) {
    await step('create user root', () =>
      client.user('root').create(setup.rootPassword ?? randomPassword()),
    );
  } else if (setup.rootPassword !== undefined) {
    await step('set root password', () => client.user('root').setPassword(setup.rootPassword!));
  }
  await step('grant root role to root', () => client.user('root').addRole('root'));

  for (const role of setup.roles ?? []) {
    if (!existingRoles.has(role.name))
      await step(`create role ${role.name}`, () => client.role(role.name).create());
    const want = role.permissions.flatMap(toRequests);
    // Replace the role's permissions with exactly the wanted ones.
    const have = await step(`read role ${role.name}`, () => client.role(role.name).permissions());
    for (const p of have) {
      const keep = want.some(
        (w) =>
          w.permission === p.permission &&
          w.range.start.equals(p.range.start) &&
          w.range.end.equals(p.range.end),
      );
      if (!keep)
        await step(`revoke from role ${role.name}`, () =>
          client.role(role.name).revoke({ permission: p.permission, range: p.range }),
        );
    }
    for (const w of want) {
      const present = have.some(
        (p) =>
          p.permission === w.permission &&
          w.range.start.equals(p.range.start) &&
          w.range.end.equals(p.range.end),
      );
      if (!present) await step(`grant to role ${role.name}`, () => client.role(role.name).grant(w));
    }
  }

  for (const user of setup.users ?? []) {
    if (!existingUsers.has(user.name)) {
      await step(`create user ${user.name}`, () =>
        client.user(user.name).create(user.password ?? randomPassword()),
      );
    } else if (user.password !== undefined) {
      await step(`set password of ${user.name}`, () =>
        client.user(user.name).setPassword(user.password!),
      );
    }
    const has = new Set(
      (await step(`read roles of ${user.name}`, () => client.user(user.name).roles())).map(
        (r) => r.name,
      ),
    );
    for (const r of user.roles)
      if (!has.has(r))
        await step(`grant role ${r} to ${user.name}`, () => client.user(user.name).addRole(r));
    for (const r of has)
      if (!user.roles.includes(r))
        await step(`revoke role ${r} from ${user.name}`, () =>
          client.user(user.name).removeRole(r),
        );
  }

  if (setup.enable !== false) await step('enable auth', () => client.auth.authEnable({}));
}

/**
 * Removes a user (e.g. a disconnected remote cluster's); absent users are fine.
 * @throws KVStoreError on any other failure.
 */
export async function removeEtcdUser(target: Etcd3 | EtcdKVStore, name: string): Promise<void> {
  const { client, endpoints } = unwrap(target);
  try {
    const users = await client.getUsers();
    if (users.some((u) => u.name === name)) await client.user(name).delete();
  } catch (err) {
    throw wrapError(err, endpoints, `etcd auth: remove user ${name}`);
  }
}

/** Turns auth off (as root). */
export async function disableEtcdAuth(target: Etcd3 | EtcdKVStore): Promise<void> {
  const { client, endpoints } = unwrap(target);
  try {
    await client.auth.authDisable({});
  } catch (err) {
    throw wrapError(err, endpoints, 'etcd auth: disable');
  }
}

function toRequests(p: EtcdPermissionSpec) {
  const range =
    'prefix' in p
      ? Range.prefix(p.prefix)
      : new Range(Buffer.from(p.key), Buffer.from(p.key + '\0'));
  const kinds =
    p.access === 'readwrite'
      ? (['Readwrite'] as const)
      : p.access === 'read'
        ? (['Read'] as const)
        : (['Write'] as const);
  return kinds.map((permission) => ({ permission, range }));
}

function unwrap(target: Etcd3 | EtcdKVStore): { client: Etcd3; endpoints: string[] } {
  return target instanceof EtcdKVStore
    ? { client: target.client, endpoints: target.endpoints }
    : { client: target, endpoints: ['(etcd3 client)'] };
}

function randomPassword(): string {
  return randomBytes(24).toString('base64url');
}
