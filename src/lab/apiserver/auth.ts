/**
 * Authentication and authorization of the lab API server's https listeners,
 * the parts of kube-apiserver the lab needs:
 *
 * - authentication: a bearer token from a static token file (kube-apiserver's
 *   `--token-auth-file` CSV: `token,user,uid,"group1,group2"`), or a client
 *   certificate signed by the client CA (user = CN, groups = O). No valid
 *   credential: 401. /healthz, /livez, /readyz and /version stay open, as
 *   Kubernetes' system:public-info-viewer allows.
 * - authorization: a small RBAC-like table per group (verbs x resources).
 *   A request no rule of the identity's groups allows: 403 with Kubernetes'
 *   wording. Agents may read everything but not write Deployments, Secrets,
 *   RBAC objects or the objects that run pods (DaemonSets, ReplicaSets...).
 *
 * The plain Unix socket the lab's own tools use is trusted (root-only file).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { TendrilError } from '../../util/errors.js';

/** Who made a request. */
export interface Identity {
  user: string;
  groups: string[];
}

/** What a request does, as Kubernetes' authorizer attributes. */
export interface RequestAttributes {
  /** get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** Plural resource, with "/sub" for a subresource ("pods/status"). */
  resource: string;
  /** API group ("" core). */
  group: string;
  namespace?: string;
  name?: string;
}

/** One rule: these verbs on these resources ("*" = all), minus `except`. */
export interface Rule {
  verbs: readonly string[];
  resources: readonly string[];
  /** Resources the rule does not cover (so an identity can "write everything but"). */
  except?: readonly string[];
}

/** The verbs that only read. */
export const READ_VERBS = ['get', 'list', 'watch'] as const;
/** The verbs that write. */
export const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'] as const;

/** Resources only the control plane and the admin write. */
export const CONTROL_PLANE_ONLY = [
  'secrets',
  'deployments',
  'deployments/scale',
  'deployments/status',
  'daemonsets',
  'replicasets',
  'statefulsets',
  'clusterroles',
  'clusterrolebindings',
  'roles',
  'rolebindings',
  'serviceaccounts',
  'customresourcedefinitions',
] as const;

/** Group names of the lab's identities. */
export const GROUPS = {
  masters: 'system:masters',
  nodes: 'system:nodes',
  agents: 'tendril:agents',
  operator: 'tendril:operator',
  dns: 'tendril:dns',
  clustermesh: 'tendril:clustermesh-apiserver',
} as const;

/** The RBAC-like table: rules per group. */
export const RULES: Readonly<Record<string, readonly Rule[]>> = {
  [GROUPS.masters]: [{ verbs: ['*'], resources: ['*'] }],
  // the lab's kubelets run pods, report node and pod status, and read secrets for volumes
  [GROUPS.nodes]: [
    { verbs: READ_VERBS, resources: ['*'] },
    { verbs: WRITE_VERBS, resources: ['*'], except: CONTROL_PLANE_ONLY },
  ],
  // agents: read all but Secrets; write their own kinds (endpoints, identities, nodes, events...)
  [GROUPS.agents]: [
    { verbs: READ_VERBS, resources: ['*'], except: ['secrets'] },
    { verbs: WRITE_VERBS, resources: ['*'], except: CONTROL_PLANE_ONLY },
  ],
  [GROUPS.operator]: [
    { verbs: READ_VERBS, resources: ['*'] },
    { verbs: WRITE_VERBS, resources: ['*'], except: CONTROL_PLANE_ONLY },
  ],
  [GROUPS.dns]: [{ verbs: READ_VERBS, resources: ['*'], except: ['secrets'] }],
  [GROUPS.clustermesh]: [
    { verbs: READ_VERBS, resources: ['*'], except: ['secrets'] },
    { verbs: WRITE_VERBS, resources: ['*'], except: CONTROL_PLANE_ONLY },
  ],
};

function covers(rule: Rule, a: RequestAttributes): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(a.verb)) return false;
  const base = a.resource.split('/')[0]!;
  if (rule.except?.includes(a.resource) || rule.except?.includes(base)) return false;
  return rule.resources.includes('*') || rule.resources.includes(a.resource);
}

/** True when a rule of one of the identity's groups allows the request. */
export function authorize(id: Identity, a: RequestAttributes, rules = RULES): boolean {
  return id.groups.some((g) => (rules[g] ?? []).some((r) => covers(r, a)));
}

/** Kubernetes' 403 message: `secrets is forbidden: User "x" cannot create resource "secrets" in API group "" in the namespace "default"`. */
export function forbiddenMessage(id: Identity, a: RequestAttributes): string {
  const [res, sub] = a.resource.split('/');
  const what = a.name
    ? `${res}${a.group ? `.${a.group}` : ''} "${a.name}"`
    : `${res}${a.group ? `.${a.group}` : ''}`;
  const where = a.namespace ? ` in the namespace "${a.namespace}"` : ' at the cluster scope';
  return `${what} is forbidden: User "${id.user}" cannot ${a.verb} resource "${res}"${sub ? ` (subresource "${sub}")` : ''} in API group "${a.group}"${where}`;
}

/**
 * Parses a kube-apiserver static token file: `token,user,uid[,"group1,group2"]` per line.
 * @throws TendrilError APISERVER_BAD_TOKEN_FILE naming the line.
 */
export function parseTokenFile(text: string, path = 'token file'): Map<string, Identity> {
  const out = new Map<string, Identity>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^([^,]+),([^,]+),([^,]*)(?:,"?([^"]*)"?)?$/.exec(line);
    if (!m)
      throw new TendrilError(
        'APISERVER_BAD_TOKEN_FILE',
        `${path}:${i + 1}: not token,user,uid,"groups"`,
        {
          hint: 'write one credential per line: TOKEN,USER,UID,"GROUP1,GROUP2"',
        },
      );
    out.set(m[1]!, { user: m[2]!, groups: (m[4] ?? '').split(',').filter(Boolean) });
  });
  return out;
}

/** Reads a static token file. @throws TendrilError APISERVER_BAD_TOKEN_FILE. */
export function readTokenFile(path: string): Map<string, Identity> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TendrilError(
      'APISERVER_BAD_TOKEN_FILE',
      `read token file ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return parseTokenFile(text, path);
}

/**
 * The identity of an https request: its bearer token, else its verified client
 * certificate (CN, O). Undefined: 401. A wrong token is not rescued by a certificate.
 */
export function authenticate(
  req: IncomingMessage,
  tokens: ReadonlyMap<string, Identity>,
): Identity | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    return m ? tokens.get(m[1]!) : undefined;
  }
  const sock = req.socket as TLSSocket;
  if (sock.encrypted && sock.authorized) {
    const subject = sock.getPeerCertificate()?.subject as
      Record<string, string | string[]> | undefined;
    const cn = subject?.CN;
    if (typeof cn !== 'string' || !cn) return undefined;
    const o = subject?.O;
    return { user: cn, groups: Array.isArray(o) ? o : o ? [o] : [] };
  }
  return undefined;
}
