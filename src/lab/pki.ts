/**
 * A lab cluster's PKI and credentials, made at `lab create` and kept under the
 * cluster's state dir (pki/, keys mode 0600):
 *
 *   pki/ca.crt, ca.key               the cluster's CA
 *   pki/apiserver.crt, apiserver.key serving certificate: 127.0.0.1, localhost, the
 *                                    control-plane IP, the `kubernetes` Service IP and names
 *   pki/tokens.csv                   kube-apiserver --token-auth-file: one token per daemon
 *   pki/kubeconfigs/<id>.yaml        one kubeconfig per daemon: https URL, CA, its token
 *
 * Identities (user, groups; the API server's RULES in apiserver/auth.ts say
 * what each group may do): admin (system:masters), kubelet-<node>
 * (system:nodes), agent-<node> (tendril:agents), operator, dns,
 * clustermesh-apiserver. Made once; a second call keeps the CA and tokens and
 * adds what is missing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createCA, issueServerCert, loadCA } from '../util/certs.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { nthAddress, parseCIDR } from '../util/ipv4.js';
import { clusterDir } from '../util/paths.js';
import { TendrilError } from '../util/errors.js';
import { GROUPS, parseTokenFile } from './apiserver/auth.js';
import { randomBytes } from 'node:crypto';
import { apiServerNodeURL, type LabCluster } from './state.js';

/** One daemon's identity. */
export interface LabIdentity {
  /** File-name-safe id: "admin", "agent-<node>", "operator", ... */
  id: string;
  user: string;
  groups: string[];
}

/** The cluster's pki/ directory. */
export function pkiDir(cluster: string): string {
  return join(clusterDir(cluster), 'pki');
}

/** Paths of the PKI files. */
export function pkiPaths(cluster: string) {
  const d = pkiDir(cluster);
  return {
    caCert: join(d, 'ca.crt'),
    caKey: join(d, 'ca.key'),
    serverCert: join(d, 'apiserver.crt'),
    serverKey: join(d, 'apiserver.key'),
    tokens: join(d, 'tokens.csv'),
  };
}

/** The https Unix socket of a cluster's API server. */
export function apiSecureSocketPath(cluster: string): string {
  return join(clusterDir(cluster), 'api-tls.sock');
}

/** The kubeconfig of one identity (e.g. "agent-node1", "operator"). */
export function daemonKubeconfigPath(cluster: string, id: string): string {
  return join(pkiDir(cluster), 'kubeconfigs', `${id}.yaml`);
}

/** Every identity of a cluster. */
export function labIdentities(c: Pick<LabCluster, 'nodes'>): LabIdentity[] {
  return [
    { id: 'admin', user: 'tendril-admin', groups: [GROUPS.masters] },
    ...c.nodes.map((n) => ({
      id: `kubelet-${n.name}`,
      user: `system:node:${n.name}`,
      groups: [GROUPS.nodes],
    })),
    ...c.nodes.map((n) => ({
      id: `agent-${n.name}`,
      user: `system:serviceaccount:kube-system:tendril-agent:${n.name}`,
      groups: [GROUPS.agents],
    })),
    {
      id: 'operator',
      user: 'system:serviceaccount:kube-system:tendril-operator',
      groups: [GROUPS.operator],
    },
    { id: 'dns', user: 'system:serviceaccount:kube-system:tendril-dns', groups: [GROUPS.dns] },
    {
      id: 'clustermesh-apiserver',
      user: 'system:serviceaccount:kube-system:clustermesh-apiserver',
      groups: [GROUPS.clustermesh],
    },
  ];
}

/**
 * Makes (or completes) the cluster's CA, serving certificate, tokens and
 * per-daemon kubeconfigs. The kubeconfigs point at `server` (default: the
 * nodes' https URL). Returns the tokens by identity id.
 */
export async function ensureLabPKI(
  c: LabCluster,
  options: { server?: string } = {},
): Promise<Map<string, string>> {
  const p = pkiPaths(c.name);
  const ca =
    existsSync(p.caCert) && existsSync(p.caKey)
      ? await loadCA(readFileSync(p.caCert, 'utf8'), readFileSync(p.caKey, 'utf8'))
      : await createCA({ commonName: `tendril lab ${c.name} CA` });
  writeFileAtomicSync(p.caCert, ca.certPEM, { dirMode: 0o700 });
  writeFileAtomicSync(p.caKey, ca.keyPEM, { mode: 0o600, dirMode: 0o700 });
  const cp = c.nodes.find((n) => n.role === 'control-plane') ?? c.nodes[0]!;
  const kubernetesIP = nthAddress(parseCIDR(c.serviceCIDR, 'service CIDR'), 1);
  if (!existsSync(p.serverCert) || !existsSync(p.serverKey)) {
    const serving = await issueServerCert(ca, {
      commonName: 'kube-apiserver',
      ips: ['127.0.0.1', cp.ip, kubernetesIP],
      dnsNames: [
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
    });
    writeFileAtomicSync(p.serverCert, serving.certPEM);
    writeFileAtomicSync(p.serverKey, serving.keyPEM, { mode: 0o600 });
  }
  // tokens: keep the ones made before, add missing identities
  const byUser = new Map<string, string>();
  if (existsSync(p.tokens))
    for (const [token, id] of parseTokenFile(readFileSync(p.tokens, 'utf8'), p.tokens))
      byUser.set(id.user, token);
  const tokens = new Map<string, string>();
  const lines: string[] = [];
  for (const id of labIdentities(c)) {
    const token = byUser.get(id.user) ?? randomBytes(24).toString('base64url');
    tokens.set(id.id, token);
    lines.push(`${token},${id.user},${id.id},"${id.groups.join(',')}"`);
  }
  writeFileAtomicSync(p.tokens, lines.join('\n') + '\n', { mode: 0o600 });
  const server =
    options.server ?? apiServerNodeURL({ ...c, apiSecureSocket: apiSecureSocketPath(c.name) });
  for (const id of labIdentities(c)) {
    writeFileAtomicSync(
      daemonKubeconfigPath(c.name, id.id),
      kubeconfigFor(c.name, id.id, server, ca.certPEM, tokens.get(id.id)!),
      {
        mode: 0o600,
        dirMode: 0o700,
      },
    );
  }
  return tokens;
}

/** A kubeconfig for one identity: https server, the CA inline, the token inline. */
export function kubeconfigFor(
  cluster: string,
  id: string,
  server: string,
  caPEM: string,
  token: string,
): string {
  const name = `lab-${cluster}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': `${id}@${name}`,
    clusters: [
      {
        name,
        cluster: { server, 'certificate-authority-data': Buffer.from(caPEM).toString('base64') },
      },
    ],
    users: [{ name: id, user: { token } }],
    contexts: [
      { name: `${id}@${name}`, context: { cluster: name, user: id, namespace: 'kube-system' } },
    ],
  });
}

/** One identity's credential: the lab CA (to verify the server) and its token. */
export interface LabCredential {
  caPEM: string;
  token: string;
}

/**
 * The credential of one identity (e.g. "admin", "operator") from the PKI
 * ensureLabPKI made.
 * @throws TendrilError `LAB_PKI_MISSING` when the cluster has no PKI or no token for the identity.
 */
export function labCredential(c: Pick<LabCluster, 'name' | 'nodes'>, id: string): LabCredential {
  const p = pkiPaths(c.name);
  const ident = labIdentities(c).find((i) => i.id === id);
  if (!ident)
    throw new TendrilError('LAB_PKI_MISSING', `lab cluster ${c.name} has no identity ${id}`, {
      hint: `use one of: ${labIdentities(c)
        .map((i) => i.id)
        .join(', ')}`,
    });
  let token: string | undefined;
  let caPEM: string;
  try {
    caPEM = readFileSync(p.caCert, 'utf8');
    for (const [t, who] of parseTokenFile(readFileSync(p.tokens, 'utf8'), p.tokens))
      if (who.user === ident.user) token = t;
  } catch (err) {
    throw new TendrilError(
      'LAB_PKI_MISSING',
      `lab cluster ${c.name} has no PKI in ${pkiDir(c.name)}`,
      {
        hint: `its pki/ was removed: delete and create lab cluster ${c.name} again`,
        cause: err,
      },
    );
  }
  if (!token)
    throw new TendrilError('LAB_PKI_MISSING', `${p.tokens} has no token for ${ident.user}`, {
      hint: `delete and create lab cluster ${c.name} again (lab create writes a token per daemon)`,
    });
  return { caPEM, token };
}

/**
 * The kubeconfig of one identity (e.g. "operator", "agent-<node>") from the
 * PKI ensureLabPKI made: the nodes' https URL, the lab CA inline, its token.
 * @throws TendrilError `LAB_PKI_MISSING` as {@link labCredential}.
 */
export function labKubeconfig(c: LabCluster, id: string): string {
  const { caPEM, token } = labCredential(c, id);
  return kubeconfigFor(c.name, id, apiServerNodeURL(c), caPEM, token);
}
