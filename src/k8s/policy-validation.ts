/**
 * Validation of the network policy kinds: `cilium.io/v2` CiliumNetworkPolicy and
 * CiliumClusterwideNetworkPolicy, and `networking.k8s.io/v1` NetworkPolicy. Every
 * problem is a FieldError naming its path (`spec.ingress[0].toPorts[0].ports[1].endPort`),
 * so `tendril apply` of a bad policy says which field to fix, and (since apply
 * validates every document first) a manifest with one bad policy applies nothing.
 */
import { isIP } from 'node:net';
import type { KubeObject } from './objects.js';
import type { FieldError } from './status.js';
import { isPlainObject } from './mergepatch.js';

/** The entities a rule may name (fromEntities/toEntities), as Cilium 1.19 knows them. */
export const POLICY_ENTITIES = [
  'all',
  'cluster',
  'health',
  'host',
  'init',
  'ingress',
  'kube-apiserver',
  'remote-node',
  'unmanaged',
  'world',
  'world-ipv4',
  'world-ipv6',
] as const;

/** L4 protocols a port rule may name (Tendril's datapath enforces TCP, UDP and ANY). */
export const POLICY_PROTOCOLS = ['ANY', 'TCP', 'UDP'] as const;

const SELECTOR_OPERATORS = ['DoesNotExist', 'Exists', 'In', 'NotIn'];
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Rule fields Tendril enforces, per CNP direction. */
const RULE_FIELDS: Record<string, string[]> = {
  ingress: ['fromEndpoints', 'fromEntities', 'fromCIDR', 'fromCIDRSet', 'toPorts'],
  ingressDeny: ['fromEndpoints', 'fromEntities', 'fromCIDR', 'fromCIDRSet', 'toPorts'],
  egress: ['toEndpoints', 'toEntities', 'toCIDR', 'toCIDRSet', 'toPorts'],
  egressDeny: ['toEndpoints', 'toEntities', 'toCIDR', 'toCIDRSet', 'toPorts'],
};
/** Cilium rule fields Tendril does not enforce: refused rather than silently ignored. */
const UNSUPPORTED_RULE_FIELDS = [
  'fromRequires',
  'toRequires',
  'fromNodes',
  'toNodes',
  'fromGroups',
  'toGroups',
  'toFQDNs',
  'toServices',
  'icmps',
  'authentication',
];
const SPEC_FIELDS = [
  'endpointSelector',
  'ingress',
  'egress',
  'ingressDeny',
  'egressDeny',
  'enableDefaultDeny',
  'description',
  'labels',
];

/** Field errors collected while walking a policy. */
class PolicyErrs {
  readonly list: FieldError[] = [];
  invalid(field: string, value: unknown, detail: string): void {
    this.list.push({ type: 'FieldValueInvalid', field, value, detail });
  }
  required(field: string, detail = ''): void {
    this.list.push({ type: 'FieldValueRequired', field, detail });
  }
  notSupported(field: string, value: unknown, allowed: readonly string[]): void {
    this.list.push({
      type: 'FieldValueNotSupported',
      field,
      value,
      detail: `supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`,
    });
  }
  forbidden(field: string, detail: string): void {
    this.list.push({ type: 'FieldValueForbidden', field, detail });
  }
}

/** Parses `a.b.c.d/len` or `a::/len` (a bare address is a host prefix). Undefined if invalid. */
export function parseCidr(s: string): { family: 4 | 6; addr: string; len: number } | undefined {
  const m = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(s);
  if (!m) return undefined;
  const fam = isIP(m[1]!);
  if (fam === 0) return undefined;
  const max = fam === 4 ? 32 : 128;
  const len = m[2] === undefined ? max : Number(m[2]);
  if (len > max) return undefined;
  return { family: fam as 4 | 6, addr: m[1]!, len };
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** True if IPv4 CIDR `inner` lies inside `outer` (both valid IPv4 CIDRs). */
function ipv4Within(
  inner: { addr: string; len: number },
  outer: { addr: string; len: number },
): boolean {
  if (inner.len < outer.len) return false;
  const mask = outer.len === 0 ? 0 : (~0 << (32 - outer.len)) >>> 0;
  return (ipv4ToInt(inner.addr) & mask) >>> 0 === (ipv4ToInt(outer.addr) & mask) >>> 0;
}

function validateSelector(sel: unknown, path: string, e: PolicyErrs): void {
  if (!isPlainObject(sel)) return e.invalid(path, sel, 'must be a label selector object');
  for (const k of Object.keys(sel)) {
    if (k !== 'matchLabels' && k !== 'matchExpressions')
      e.invalid(
        `${path}.${k}`,
        k,
        'unknown field (a selector has matchLabels and matchExpressions)',
      );
  }
  if (sel.matchLabels !== undefined) {
    if (!isPlainObject(sel.matchLabels))
      e.invalid(`${path}.matchLabels`, sel.matchLabels, 'must be a map of string to string');
    else
      for (const [k, v] of Object.entries(sel.matchLabels)) {
        if (k === '') e.invalid(`${path}.matchLabels`, k, 'label keys must be non-empty');
        if (typeof v !== 'string')
          e.invalid(
            `${path}.matchLabels[${k}]`,
            v,
            'must be a string (quote values such as "true" or "80" in YAML)',
          );
      }
  }
  if (sel.matchExpressions !== undefined) {
    if (!Array.isArray(sel.matchExpressions))
      return e.invalid(`${path}.matchExpressions`, sel.matchExpressions, 'must be a list');
    sel.matchExpressions.forEach((x: unknown, i: number) => {
      const f = `${path}.matchExpressions[${i}]`;
      if (!isPlainObject(x)) return e.invalid(f, x, 'must be an object');
      if (typeof x.key !== 'string' || x.key === '') e.required(`${f}.key`);
      if (typeof x.operator !== 'string' || !SELECTOR_OPERATORS.includes(x.operator))
        return e.notSupported(`${f}.operator`, x.operator, SELECTOR_OPERATORS);
      const values = x.values;
      if (
        values !== undefined &&
        (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))
      )
        return e.invalid(`${f}.values`, values, 'must be a list of strings');
      const n = Array.isArray(values) ? values.length : 0;
      if ((x.operator === 'In' || x.operator === 'NotIn') && n === 0)
        e.required(`${f}.values`, `must be specified when \`operator\` is '${x.operator}'`);
      if ((x.operator === 'Exists' || x.operator === 'DoesNotExist') && n > 0)
        e.forbidden(`${f}.values`, `may not be specified when \`operator\` is '${x.operator}'`);
    });
  }
}

function validateCidrList(list: unknown, path: string, e: PolicyErrs): void {
  if (!Array.isArray(list)) return e.invalid(path, list, 'must be a list of CIDRs');
  list.forEach((c: unknown, j: number) => {
    if (typeof c !== 'string' || !parseCidr(c))
      e.invalid(`${path}[${j}]`, c, 'must be a valid CIDR (e.g. 10.0.0.0/8 or 192.0.2.1/32)');
  });
}

function validateCidrSetList(list: unknown, path: string, e: PolicyErrs): void {
  if (!Array.isArray(list)) return e.invalid(path, list, 'must be a list of {cidr, except}');
  list.forEach((c: unknown, j: number) => {
    const f = `${path}[${j}]`;
    if (!isPlainObject(c)) return e.invalid(f, c, 'must be an object with cidr and except');
    validateCidrBlock(c, f, 'cidr', e);
  });
}

/** A {cidr, except} object (CNP CIDRSet and NetworkPolicy ipBlock). */
function validateCidrBlock(
  c: Record<string, unknown>,
  f: string,
  key: string,
  e: PolicyErrs,
): void {
  for (const k of Object.keys(c))
    if (k !== key && k !== 'except')
      e.invalid(`${f}.${k}`, k, `unknown field (known: ${key}, except)`);
  if (c[key] === undefined) return e.required(`${f}.${key}`);
  const outer = typeof c[key] === 'string' ? parseCidr(c[key] as string) : undefined;
  if (!outer || !(c[key] as string).includes('/'))
    return e.invalid(`${f}.${key}`, c[key], 'must be a valid CIDR (e.g. 10.0.0.0/8)');
  if (c.except === undefined) return;
  if (!Array.isArray(c.except))
    return e.invalid(`${f}.except`, c.except, 'must be a list of CIDRs');
  c.except.forEach((x: unknown, k: number) => {
    const inner = typeof x === 'string' ? parseCidr(x) : undefined;
    if (!inner) return e.invalid(`${f}.except[${k}]`, x, 'must be a valid CIDR');
    if (inner.family !== outer.family || (outer.family === 4 && !ipv4Within(inner, outer)))
      e.invalid(`${f}.except[${k}]`, x, `must be within ${key} ${c[key] as string}`);
  });
}

function validatePortNumber(v: unknown, path: string, e: PolicyErrs): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n))
    return (e.invalid(path, v, 'must be a port number'), undefined);
  if (n < 1 || n > 65535)
    return (e.invalid(path, v, 'must be between 1 and 65535, inclusive'), undefined);
  return n;
}

/** One port entry: port (number, numeric string or named port), endPort, protocol. */
function validatePort(p: unknown, f: string, e: PolicyErrs, protocols: readonly string[]): void {
  if (!isPlainObject(p)) return e.invalid(f, p, 'must be an object');
  for (const k of Object.keys(p))
    if (!['port', 'endPort', 'protocol'].includes(k))
      e.invalid(`${f}.${k}`, k, 'unknown field (known: port, endPort, protocol)');
  let port: number | undefined;
  let named = false;
  if (p.port !== undefined) {
    if (typeof p.port === 'string' && !/^\d+$/.test(p.port)) {
      named = true;
      if (p.port.length > 15 || !IANA_SVC_NAME.test(p.port) || !/[a-z]/.test(p.port))
        e.invalid(
          `${f}.port`,
          p.port,
          'must be a port number between 1 and 65535 or a port name (at most 15 lowercase letters, digits and hyphens)',
        );
    } else port = validatePortNumber(p.port, `${f}.port`, e);
  }
  if (p.endPort !== undefined) {
    const end = validatePortNumber(p.endPort, `${f}.endPort`, e);
    if (p.port === undefined) e.required(`${f}.port`, 'endPort needs a numeric port');
    else if (named) e.forbidden(`${f}.endPort`, 'may not be used with a named port');
    else if (end !== undefined && port !== undefined && end < port)
      e.invalid(`${f}.endPort`, p.endPort, `must be greater than or equal to port (${port})`);
  }
  if (
    p.protocol !== undefined &&
    (typeof p.protocol !== 'string' || !protocols.includes(p.protocol))
  )
    e.notSupported(`${f}.protocol`, p.protocol, protocols);
}

function validateEntities(list: unknown, path: string, e: PolicyErrs): void {
  if (!Array.isArray(list)) return e.invalid(path, list, 'must be a list of entities');
  list.forEach((x: unknown, j: number) => {
    if (typeof x !== 'string' || !(POLICY_ENTITIES as readonly string[]).includes(x))
      e.notSupported(`${path}[${j}]`, x, POLICY_ENTITIES);
  });
}

function validateCiliumRule(rule: unknown, dir: string, f: string, e: PolicyErrs): void {
  if (!isPlainObject(rule)) return e.invalid(f, rule, 'must be an object');
  const known = RULE_FIELDS[dir]!;
  for (const k of Object.keys(rule)) {
    if (known.includes(k)) continue;
    if (UNSUPPORTED_RULE_FIELDS.includes(k))
      e.forbidden(`${f}.${k}`, `not supported by Tendril (supported: ${known.join(', ')})`);
    else e.invalid(`${f}.${k}`, k, `unknown field (known in ${dir}: ${known.join(', ')})`);
  }
  for (const k of ['fromEndpoints', 'toEndpoints']) {
    if (rule[k] === undefined) continue;
    if (!Array.isArray(rule[k])) e.invalid(`${f}.${k}`, rule[k], 'must be a list of selectors');
    else (rule[k] as unknown[]).forEach((s, j) => validateSelector(s, `${f}.${k}[${j}]`, e));
  }
  for (const k of ['fromEntities', 'toEntities'])
    if (rule[k] !== undefined) validateEntities(rule[k], `${f}.${k}`, e);
  for (const k of ['fromCIDR', 'toCIDR'])
    if (rule[k] !== undefined) validateCidrList(rule[k], `${f}.${k}`, e);
  for (const k of ['fromCIDRSet', 'toCIDRSet'])
    if (rule[k] !== undefined) validateCidrSetList(rule[k], `${f}.${k}`, e);
  if (rule.toPorts !== undefined) {
    if (!Array.isArray(rule.toPorts))
      return e.invalid(`${f}.toPorts`, rule.toPorts, 'must be a list');
    rule.toPorts.forEach((tp: unknown, j: number) => {
      const pf = `${f}.toPorts[${j}]`;
      if (!isPlainObject(tp)) return e.invalid(pf, tp, 'must be an object with ports');
      for (const k of Object.keys(tp))
        if (k !== 'ports')
          e.forbidden(`${pf}.${k}`, `not supported by Tendril (L7 rules); only ports is`);
      if (tp.ports === undefined) return;
      if (!Array.isArray(tp.ports)) return e.invalid(`${pf}.ports`, tp.ports, 'must be a list');
      tp.ports.forEach((p: unknown, k: number) =>
        validatePort(p, `${pf}.ports[${k}]`, e, POLICY_PROTOCOLS),
      );
    });
  }
}

function validateCiliumSpec(s: unknown, path: string, e: PolicyErrs): void {
  if (!isPlainObject(s)) return e.invalid(path, s, 'must be an object');
  for (const k of Object.keys(s)) {
    if (SPEC_FIELDS.includes(k)) continue;
    if (k === 'nodeSelector')
      e.forbidden(
        `${path}.nodeSelector`,
        'host policies are not supported by Tendril; use endpointSelector',
      );
    else e.invalid(`${path}.${k}`, k, `unknown field (known: ${SPEC_FIELDS.join(', ')})`);
  }
  if (s.endpointSelector === undefined) e.required(`${path}.endpointSelector`);
  else validateSelector(s.endpointSelector, `${path}.endpointSelector`, e);
  for (const dir of ['ingress', 'egress', 'ingressDeny', 'egressDeny'] as const) {
    const rules = s[dir];
    if (rules === undefined) continue;
    if (!Array.isArray(rules)) {
      e.invalid(`${path}.${dir}`, rules, 'must be a list');
      continue;
    }
    rules.forEach((r: unknown, i: number) => validateCiliumRule(r, dir, `${path}.${dir}[${i}]`, e));
  }
  const dd = s.enableDefaultDeny;
  if (dd !== undefined) {
    if (!isPlainObject(dd))
      e.invalid(`${path}.enableDefaultDeny`, dd, 'must be {ingress: bool, egress: bool}');
    else
      for (const [k, v] of Object.entries(dd)) {
        if (k !== 'ingress' && k !== 'egress')
          e.invalid(`${path}.enableDefaultDeny.${k}`, k, 'unknown field (known: ingress, egress)');
        else if (typeof v !== 'boolean')
          e.invalid(`${path}.enableDefaultDeny.${k}`, v, 'must be true or false');
      }
  }
}

/** Field errors of a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy (spec and/or specs). */
export function ciliumPolicyErrors(o: KubeObject): FieldError[] {
  const e = new PolicyErrs();
  if (o.spec === undefined && o.specs === undefined)
    e.required('spec', `a ${o.kind} needs spec or specs`);
  if (o.spec !== undefined) validateCiliumSpec(o.spec, 'spec', e);
  if (o.specs !== undefined) {
    if (!Array.isArray(o.specs)) e.invalid('specs', o.specs, 'must be a list');
    else o.specs.forEach((s: unknown, i: number) => validateCiliumSpec(s, `specs[${i}]`, e));
  }
  return e.list;
}

const NP_PROTOCOLS = ['SCTP', 'TCP', 'UDP'];

function validateNetpolPeers(list: unknown, path: string, e: PolicyErrs): void {
  if (!Array.isArray(list)) return e.invalid(path, list, 'must be a list');
  list.forEach((peer: unknown, j: number) => {
    const f = `${path}[${j}]`;
    if (!isPlainObject(peer)) return e.invalid(f, peer, 'must be an object');
    const keys = Object.keys(peer);
    for (const k of keys)
      if (!['podSelector', 'namespaceSelector', 'ipBlock'].includes(k))
        e.invalid(`${f}.${k}`, k, 'unknown field (known: podSelector, namespaceSelector, ipBlock)');
    if (keys.length === 0) e.required(f, 'must specify a peer');
    if (
      peer.ipBlock !== undefined &&
      (peer.podSelector !== undefined || peer.namespaceSelector !== undefined)
    )
      e.forbidden(f, 'may not specify both ipBlock and another peer');
    if (peer.podSelector !== undefined) validateSelector(peer.podSelector, `${f}.podSelector`, e);
    if (peer.namespaceSelector !== undefined)
      validateSelector(peer.namespaceSelector, `${f}.namespaceSelector`, e);
    if (peer.ipBlock !== undefined) {
      if (!isPlainObject(peer.ipBlock))
        e.invalid(`${f}.ipBlock`, peer.ipBlock, 'must be {cidr, except}');
      else validateCidrBlock(peer.ipBlock, `${f}.ipBlock`, 'cidr', e);
    }
  });
}

/** Field errors of a networking.k8s.io/v1 NetworkPolicy. */
export function networkPolicyErrors(o: KubeObject): FieldError[] {
  const e = new PolicyErrs();
  const spec = o.spec;
  if (!isPlainObject(spec)) {
    e.required('spec');
    return e.list;
  }
  for (const k of Object.keys(spec))
    if (!['podSelector', 'policyTypes', 'ingress', 'egress'].includes(k))
      e.invalid(`spec.${k}`, k, 'unknown field (known: podSelector, policyTypes, ingress, egress)');
  if (spec.podSelector === undefined) e.required('spec.podSelector');
  else validateSelector(spec.podSelector, 'spec.podSelector', e);
  if (spec.policyTypes !== undefined) {
    if (!Array.isArray(spec.policyTypes))
      e.invalid('spec.policyTypes', spec.policyTypes, 'must be a list');
    else
      spec.policyTypes.forEach((t: unknown, i: number) => {
        if (t !== 'Ingress' && t !== 'Egress')
          e.notSupported(`spec.policyTypes[${i}]`, t, ['Egress', 'Ingress']);
      });
  }
  for (const [dir, peers] of [
    ['ingress', 'from'],
    ['egress', 'to'],
  ] as const) {
    const rules = spec[dir];
    if (rules === undefined) continue;
    if (!Array.isArray(rules)) {
      e.invalid(`spec.${dir}`, rules, 'must be a list');
      continue;
    }
    rules.forEach((r: unknown, i: number) => {
      const f = `spec.${dir}[${i}]`;
      if (!isPlainObject(r)) return e.invalid(f, r, 'must be an object');
      for (const k of Object.keys(r))
        if (k !== peers && k !== 'ports')
          e.invalid(`${f}.${k}`, k, `unknown field (known: ${peers}, ports)`);
      if (r[peers] !== undefined) validateNetpolPeers(r[peers], `${f}.${peers}`, e);
      if (r.ports !== undefined) {
        if (!Array.isArray(r.ports)) e.invalid(`${f}.ports`, r.ports, 'must be a list');
        else
          r.ports.forEach((p: unknown, k: number) =>
            validatePort(p, `${f}.ports[${k}]`, e, NP_PROTOCOLS),
          );
      }
    });
  }
  return e.list;
}
