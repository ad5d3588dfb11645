/**
 * Translates the three policy kinds into one internal form, as Cilium 1.19 does:
 * `cilium.io/v2` CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (spec and
 * specs) and `networking.k8s.io/v1` NetworkPolicy all become PolicySpecs, each a
 * subject selector, the directions it makes default-deny, and rules (peers x ports,
 * allow or deny) that remember where they came from (`spec.ingress[0]`), so a
 * verdict can name the policy and rule that decided it.
 *
 * Scoping, applied here once:
 * - a CNP's subject and peer selectors match its own namespace unless they name
 *   `io.kubernetes.pod.namespace` (a CCNP's peers: any namespaced endpoint);
 * - peer selectors without `io.cilium.k8s.policy.cluster` match the local cluster
 *   only (policy-default-local-cluster, the 1.19 default; turn off with
 *   `defaultLocalCluster: false`); `{key: io.cilium.k8s.policy.cluster, operator: Exists}`
 *   names the key, so it matches every cluster;
 * - selectors naming `reserved:` labels are not scoped.
 */
import type { KubeObject } from '../k8s/objects.js';
import { CLUSTER_LABEL, NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX } from '../identity/labels.js';
import { TendrilError } from '../util/errors.js';
import {
  namesKey,
  requirementsOf,
  type LabelSelectorSpec,
  type PeerSelector,
  type Requirement,
} from './selector.js';

export type Direction = 'ingress' | 'egress';
export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';

/** Which object a rule came from. */
export interface PolicyRef {
  kind: PolicyKind;
  namespace?: string;
  name: string;
}

/** A port of a rule: numeric (with an optional range end) or named; protocol ANY = TCP, UDP and SCTP. */
export interface PortSpec {
  protocol: 'TCP' | 'UDP' | 'SCTP' | 'ANY';
  port?: number;
  endPort?: number;
  /** A named port, resolved against the endpoints' container ports. */
  name?: string;
}

/** One rule: who (peers, or every identity) may (or may not, `deny`) reach which ports. */
export interface PolicyRule {
  policy: PolicyRef;
  /** The rule's field path in the object, e.g. `spec.ingress[0]`, `specs[1].egressDeny[0]`. */
  path: string;
  direction: Direction;
  deny: boolean;
  /** 'all': every identity (wildcard). An empty list selects nothing. */
  peers: PeerSelector[] | 'all';
  /** Empty: every protocol and port. */
  ports: PortSpec[];
}

/** One spec of a policy: what it selects, which directions it makes default-deny, its rules. */
export interface PolicySpec {
  policy: PolicyRef;
  path: string;
  subject: Requirement[];
  enforces: Record<Direction, boolean>;
  rules: PolicyRule[];
}

/** How selectors are scoped. */
export interface TranslateOptions {
  /** This cluster's name (value of io.cilium.k8s.policy.cluster). */
  clusterName: string;
  /** policy-default-local-cluster (default true, as Cilium 1.19). */
  defaultLocalCluster?: boolean;
}

/** A policy object that cannot be translated (it should have failed validation); code POLICY_INVALID. */
export class PolicyTranslateError extends TendrilError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('POLICY_INVALID', message, {
      hint: 'check the policy with `tendril apply --dry-run -f FILE`',
      cause: options.cause,
    });
    this.name = 'PolicyTranslateError';
  }
}

/** "CiliumNetworkPolicy default/name" */
export function formatPolicyRef(p: PolicyRef): string {
  return `${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}`;
}

/** A stable key of a policy object: kind/namespace/name. */
export function policyKey(p: PolicyRef): string {
  return `${p.kind}/${p.namespace ?? ''}/${p.name}`;
}

const k8sReq = (key: string, op: Requirement['op'], values: string[] = []): Requirement => ({
  source: 'k8s',
  key,
  op,
  values,
});

function scopeCluster(reqs: Requirement[], opts: TranslateOptions): Requirement[] {
  if (opts.defaultLocalCluster === false || namesKey(reqs, CLUSTER_LABEL)) return reqs;
  return [...reqs, k8sReq(CLUSTER_LABEL, 'In', [opts.clusterName])];
}

/** A CNP/CCNP peer endpoint selector, scoped to the namespace and the local cluster. */
function ciliumPeer(
  sel: LabelSelectorSpec,
  namespace: string | undefined,
  opts: TranslateOptions,
): PeerSelector {
  let reqs = requirementsOf(sel);
  if (reqs.some((r) => r.source === 'reserved')) return { kind: 'labels', requirements: reqs };
  if (!namesKey(reqs, NAMESPACE_LABEL))
    reqs = [
      ...reqs,
      namespace ? k8sReq(NAMESPACE_LABEL, 'In', [namespace]) : k8sReq(NAMESPACE_LABEL, 'Exists'),
    ];
  return { kind: 'labels', requirements: scopeCluster(reqs, opts) };
}

function cnpPorts(toPorts: unknown): PortSpec[] {
  const out: PortSpec[] = [];
  for (const tp of (toPorts as Array<{ ports?: Array<Record<string, unknown>> }> | undefined) ??
    []) {
    for (const p of tp.ports ?? []) out.push(portSpec(p, 'ANY'));
  }
  return out;
}

function portSpec(p: Record<string, unknown>, defaultProtocol: PortSpec['protocol']): PortSpec {
  const protocol = ((p.protocol as string | undefined) ?? defaultProtocol) as PortSpec['protocol'];
  const port = p.port;
  if (port === undefined) return { protocol };
  if (typeof port === 'number' || /^\d+$/.test(String(port))) {
    const n = Number(port);
    const end = p.endPort === undefined ? undefined : Number(p.endPort);
    return end !== undefined && end > n
      ? { protocol, port: n, endPort: end }
      : { protocol, port: n };
  }
  return { protocol, name: String(port) };
}

const CNP_DIRS = [
  ['ingress', 'ingress', false, 'from'],
  ['ingressDeny', 'ingress', true, 'from'],
  ['egress', 'egress', false, 'to'],
  ['egressDeny', 'egress', true, 'to'],
] as const;

/** Translates a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy. */
function translateCilium(o: KubeObject, opts: TranslateOptions): PolicySpec[] {
  const clusterwide = o.kind === 'CiliumClusterwideNetworkPolicy';
  const namespace = clusterwide ? undefined : (o.metadata.namespace ?? 'default');
  const policy: PolicyRef = { kind: o.kind as PolicyKind, namespace, name: o.metadata.name ?? '' };
  const specs: Array<[string, Record<string, unknown>]> = [];
  if (o.spec) specs.push(['spec', o.spec as Record<string, unknown>]);
  ((o.specs as Array<Record<string, unknown>> | undefined) ?? []).forEach((s, i) =>
    specs.push([`specs[${i}]`, s]),
  );
  return specs.map(([path, s]) => {
    let subject = requirementsOf(s.endpointSelector as LabelSelectorSpec);
    if (namespace && !namesKey(subject, NAMESPACE_LABEL))
      subject = [...subject, k8sReq(NAMESPACE_LABEL, 'In', [namespace])];
    const rules: PolicyRule[] = [];
    const has: Record<Direction, boolean> = { ingress: false, egress: false };
    for (const [field, direction, deny, pre] of CNP_DIRS) {
      const list = (s[field] as Array<Record<string, unknown>> | undefined) ?? [];
      if (list.length > 0) has[direction] = true;
      list.forEach((r, i) => {
        const peers: PeerSelector[] = [];
        const eps = r[`${pre}Endpoints`] as LabelSelectorSpec[] | undefined;
        const ents = r[`${pre}Entities`] as string[] | undefined;
        const cidrs = r[`${pre}CIDR`] as string[] | undefined;
        const sets = r[`${pre}CIDRSet`] as Array<{ cidr: string; except?: string[] }> | undefined;
        for (const sel of eps ?? []) peers.push(ciliumPeer(sel, namespace, opts));
        for (const e of ents ?? []) peers.push({ kind: 'entity', entity: e });
        for (const c of cidrs ?? [])
          peers.push({ kind: 'cidr', cidr: c.includes('/') ? c : `${c}/32`, except: [] });
        for (const c of sets ?? [])
          peers.push({ kind: 'cidr', cidr: c.cidr, except: c.except ?? [] });
        const anyL3 = [eps, ents, cidrs, sets].some((x) => x !== undefined);
        const ports = cnpPorts(r.toPorts);
        // A rule with ports and no L3 part allows every peer; an empty rule `{}` allows nothing.
        const all = !anyL3 && r.toPorts !== undefined;
        rules.push({
          policy,
          path: `${path}.${field}[${i}]`,
          direction,
          deny,
          peers: all ? 'all' : peers,
          ports,
        });
      });
    }
    const dd = (s.enableDefaultDeny as Partial<Record<Direction, boolean>> | undefined) ?? {};
    return {
      policy,
      path,
      subject,
      enforces: {
        ingress: has.ingress && dd.ingress !== false,
        egress: has.egress && dd.egress !== false,
      },
      rules,
    };
  });
}

/** Namespace-selector requirements of a NetworkPolicy peer (namespace labels become identity labels). */
function namespaceRequirements(sel: LabelSelectorSpec): Requirement[] {
  const out: Requirement[] = [k8sReq(NAMESPACE_LABEL, 'Exists')];
  const map = (key: string) =>
    key === 'kubernetes.io/metadata.name' ? NAMESPACE_LABEL : NAMESPACE_LABELS_PREFIX + key;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) out.push(k8sReq(map(k), 'In', [v]));
  for (const e of sel.matchExpressions ?? [])
    out.push(k8sReq(map(e.key), e.operator as Requirement['op'], [...(e.values ?? [])]));
  return out;
}

/** Translates a networking.k8s.io/v1 NetworkPolicy. */
function translateNetworkPolicy(o: KubeObject, opts: TranslateOptions): PolicySpec[] {
  const namespace = o.metadata.namespace ?? 'default';
  const policy: PolicyRef = { kind: 'NetworkPolicy', namespace, name: o.metadata.name ?? '' };
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  const types =
    (spec.policyTypes as string[] | undefined) ??
    (spec.egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress']);
  const subject = [
    ...requirementsOf(spec.podSelector as LabelSelectorSpec, 'k8s'),
    k8sReq(NAMESPACE_LABEL, 'In', [namespace]),
  ];
  const rules: PolicyRule[] = [];
  for (const [direction, peerField, type] of [
    ['ingress', 'from', 'Ingress'],
    ['egress', 'to', 'Egress'],
  ] as const) {
    if (!types.includes(type)) continue;
    ((spec[direction] as Array<Record<string, unknown>> | undefined) ?? []).forEach((r, i) => {
      const list = (r[peerField] as Array<Record<string, unknown>> | undefined) ?? [];
      let peers: PeerSelector[] | 'all' = 'all';
      if (list.length > 0) {
        peers = list.map((peer): PeerSelector => {
          const block = peer.ipBlock as { cidr: string; except?: string[] } | undefined;
          if (block) return { kind: 'cidr', cidr: block.cidr, except: block.except ?? [] };
          const ps = peer.podSelector as LabelSelectorSpec | undefined;
          const ns = peer.namespaceSelector as LabelSelectorSpec | undefined;
          let reqs = ps ? requirementsOf(ps, 'k8s') : [];
          reqs = ns
            ? [...reqs, ...namespaceRequirements(ns)]
            : [...reqs, k8sReq(NAMESPACE_LABEL, 'In', [namespace])];
          return { kind: 'labels', requirements: scopeCluster(reqs, opts) };
        });
      }
      const ports = ((r.ports as Array<Record<string, unknown>> | undefined) ?? []).map((p) =>
        portSpec(p, 'TCP'),
      );
      rules.push({ policy, path: `spec.${direction}[${i}]`, direction, deny: false, peers, ports });
    });
  }
  return [
    {
      policy,
      path: 'spec',
      subject,
      enforces: { ingress: types.includes('Ingress'), egress: types.includes('Egress') },
      rules,
    },
  ];
}

/**
 * Translates one policy object to its specs.
 * @throws PolicyTranslateError for a kind that is not a policy.
 */
export function translatePolicy(o: KubeObject, opts: TranslateOptions): PolicySpec[] {
  switch (o.kind) {
    case 'CiliumNetworkPolicy':
    case 'CiliumClusterwideNetworkPolicy':
      return translateCilium(o, opts);
    case 'NetworkPolicy':
      return translateNetworkPolicy(o, opts);
    default:
      throw new PolicyTranslateError(
        `${o.kind} ${o.metadata?.name ?? ''} is not a network policy kind`,
      );
  }
}
