/**
 * Validation of objects as the Kubernetes API server validates them, for the
 * kinds Tendril serves: names (DNS-1123), labels and annotations, ports,
 * protocols, IPs and CIDRs, and each kind's required fields. Every problem is a
 * FieldError naming the field path (`spec.ports[0].port`), and `validateObject`
 * throws one 422 Invalid Status listing them all, worded as Kubernetes words them.
 */
import { isIP } from 'node:net';
import type { KubeObject } from './objects.js';
import { resourceForKind, type ResourceInfo } from './resources.js';
import { fromLabelSelector, matchesSelector, type LabelSelector } from './selectors.js';
import { ApiError, failure, invalid, type FieldError } from './status.js';
import { isPlainObject } from './mergepatch.js';
import { ciliumPolicyErrors, networkPolicyErrors } from './policy-validation.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Message for a bad DNS-1123 label, as Kubernetes words it. */
export function dns1123LabelErrors(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(v)) {
    out.push(
      `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
    );
  }
  return out;
}

/** Message for a bad DNS-1123 subdomain. */
export function dns1123SubdomainErrors(v: string): string[] {
  const out: string[] = [];
  if (v.length > 253) out.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(v)) {
    out.push(
      `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    );
  }
  return out;
}

/** Errors for a label/annotation key (optional DNS prefix + "/" + qualified name). */
export function qualifiedNameErrors(key: string): string[] {
  const out: string[] = [];
  const parts = key.split('/');
  let name = key;
  if (parts.length === 2) {
    const [prefix, n] = parts as [string, string];
    name = n;
    if (prefix.length === 0) out.push('prefix part must be non-empty');
    else out.push(...dns1123SubdomainErrors(prefix).map((m) => `prefix part ${m}`));
  } else if (parts.length > 2) {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name.length === 0) out.push('name part must be non-empty');
  else if (name.length > 63) out.push('name part must be no more than 63 characters');
  if (name.length > 0 && !QUALIFIED_NAME.test(name)) {
    out.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
  }
  return out;
}

/** Errors for a label value. */
export function labelValueErrors(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(v)) {
    out.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    );
  }
  return out;
}

/** True if `s` is a CIDR (`10.0.0.0/8`, `fd00::/64`) with a valid prefix length. */
export function isCIDR(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return false;
  const fam = isIP(m[1]!);
  const len = Number(m[2]);
  return fam === 4 ? len <= 32 : fam === 6 ? len <= 128 : false;
}

/** Collects field errors while walking an object. */
class Errs {
  list: FieldError[] = [];
  invalid(field: string, value: unknown, detail: string): void {
    this.list.push({ type: 'FieldValueInvalid', field, value, detail });
  }
  required(field: string, detail = ''): void {
    this.list.push({ type: 'FieldValueRequired', field, detail });
  }
  notSupported(field: string, value: unknown, allowed: string[]): void {
    this.list.push({
      type: 'FieldValueNotSupported',
      field,
      value,
      detail: `supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`,
    });
  }
  duplicate(field: string, value: unknown): void {
    this.list.push({ type: 'FieldValueDuplicate', field, value, detail: '' });
  }
}

/**
 * Checks apiVersion and kind and returns the resource.
 * @throws ApiError 400 BadRequest naming the unknown kind or version.
 */
export function requireKnownKind(obj: unknown): ResourceInfo {
  if (!isPlainObject(obj))
    throw new ApiError(
      failure(400, 'BadRequest', 'Object is not a map: expected a YAML/JSON object'),
    );
  const { apiVersion, kind } = obj as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    throw new ApiError(
      failure(
        400,
        'BadRequest',
        `Object 'apiVersion' is missing in '${JSON.stringify(obj).slice(0, 120)}'`,
      ),
    );
  }
  if (typeof kind !== 'string' || kind === '') {
    throw new ApiError(
      failure(
        400,
        'BadRequest',
        `Object 'Kind' is missing in '${JSON.stringify(obj).slice(0, 120)}'`,
      ),
    );
  }
  const info = resourceForKind(apiVersion, kind);
  if (!info) {
    throw new ApiError(
      failure(
        400,
        'BadRequest',
        `no matches for kind "${kind}" in version "${apiVersion}" (served: ${servedKindsText()})`,
      ),
    );
  }
  return info;
}

function servedKindsText(): string {
  return [
    'v1 Namespace',
    'v1 Node',
    'v1 Pod',
    'v1 Service',
    'discovery.k8s.io/v1 EndpointSlice',
    'apps/v1 Deployment|DaemonSet',
    'networking.k8s.io/v1 NetworkPolicy',
    'cilium.io/v2 CiliumNetworkPolicy|CiliumClusterwideNetworkPolicy|CiliumIdentity|CiliumEndpoint',
    'multicluster.x-k8s.io/v1alpha1 ServiceExport|ServiceImport',
  ].join(', ');
}

/** Options for validateObject. */
export interface ValidateOptions {
  /** When true the name may be absent if generateName is set (server-side create). */
  allowGenerateName?: boolean;
}

/**
 * Validates a whole object (metadata and the kind's spec).
 * @throws ApiError 400 for an unknown kind, 422 Invalid listing every field error.
 */
export function validateObject(obj: KubeObject, options: ValidateOptions = {}): ResourceInfo {
  const info = requireKnownKind(obj);
  const e = new Errs();
  validateMeta(obj, info, e, options);
  // spec and status are objects in every kind (a number or string there is refused, not stored)
  for (const f of ['spec', 'status'] as const) {
    const val = (obj as Record<string, unknown>)[f];
    if (val !== undefined && val !== null && !isPlainObject(val))
      e.invalid(f, val, 'must be an object');
  }
  const v = VALIDATORS[info.kind];
  if (v) v(obj, e);
  if (e.list.length) {
    throw invalid(
      info.kind,
      info.group,
      obj.metadata?.name ?? obj.metadata?.generateName ?? '',
      e.list,
    );
  }
  return info;
}

function validateMeta(
  obj: KubeObject,
  info: ResourceInfo,
  e: Errs,
  options: ValidateOptions,
): void {
  const m = obj.metadata;
  if (!isPlainObject(m)) {
    e.required('metadata');
    return;
  }
  const labelNamed = info.kind === 'Namespace' || info.kind === 'Service';
  if (m.name === undefined || m.name === '') {
    if (!(options.allowGenerateName && m.generateName))
      e.required('metadata.name', 'name or generateName is required');
    else if (typeof m.generateName === 'string') {
      // generateName gets 5 random characters appended; validate the prefix loosely.
      const probe = m.generateName + 'abcde';
      for (const msg of labelNamed ? dns1123LabelErrors(probe) : dns1123SubdomainErrors(probe))
        e.invalid('metadata.generateName', m.generateName, msg);
    }
  } else if (typeof m.name !== 'string') {
    e.invalid('metadata.name', m.name, 'must be a string');
  } else {
    for (const msg of labelNamed ? dns1123LabelErrors(m.name) : dns1123SubdomainErrors(m.name))
      e.invalid('metadata.name', m.name, msg);
  }
  if (m.namespace !== undefined && m.namespace !== '') {
    if (!info.namespaced) {
      // Kubernetes ignores/clears namespace for cluster-scoped kinds; so do we (defaulting clears it).
    } else if (typeof m.namespace !== 'string')
      e.invalid('metadata.namespace', m.namespace, 'must be a string');
    else
      for (const msg of dns1123LabelErrors(m.namespace))
        e.invalid('metadata.namespace', m.namespace, msg);
  }
  validateLabels(m.labels, 'metadata.labels', e);
  if (m.annotations !== undefined) {
    if (!isPlainObject(m.annotations))
      e.invalid('metadata.annotations', m.annotations, 'must be a map of string to string');
    else
      for (const [k, v] of Object.entries(m.annotations)) {
        for (const msg of qualifiedNameErrors(k)) e.invalid('metadata.annotations', k, msg);
        if (typeof v !== 'string') e.invalid(`metadata.annotations[${k}]`, v, 'must be a string');
      }
  }
  if (m.ownerReferences !== undefined) {
    if (!Array.isArray(m.ownerReferences))
      e.invalid('metadata.ownerReferences', m.ownerReferences, 'must be a list');
    else
      m.ownerReferences.forEach((r, i) => {
        const f = `metadata.ownerReferences[${i}]`;
        if (!r?.apiVersion) e.required(`${f}.apiVersion`);
        if (!r?.kind) e.required(`${f}.kind`);
        if (!r?.name) e.required(`${f}.name`);
        if (!r?.uid) e.required(`${f}.uid`);
      });
  }
}

function validateLabels(labels: unknown, field: string, e: Errs): void {
  if (labels === undefined || labels === null) return;
  if (!isPlainObject(labels)) {
    e.invalid(field, labels, 'must be a map of string to string');
    return;
  }
  for (const [k, v] of Object.entries(labels)) {
    for (const msg of qualifiedNameErrors(k)) e.invalid(field, k, msg);
    if (typeof v !== 'string')
      e.invalid(
        `${field}[${k}]`,
        v,
        'must be a string (quote values such as "true" or "80" in YAML)',
      );
    else for (const msg of labelValueErrors(v)) e.invalid(field, v, msg);
  }
}

function validPort(v: unknown, field: string, e: Errs, allowZero = false): void {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    e.invalid(field, v, 'must be an integer');
    return;
  }
  if (v < (allowZero ? 0 : 1) || v > 65535)
    e.invalid(field, v, `must be between ${allowZero ? 0 : 1} and 65535, inclusive`);
}

const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];

function validProtocol(v: unknown, field: string, e: Errs): void {
  if (v === undefined) return;
  if (typeof v !== 'string' || !PROTOCOLS.includes(v)) e.notSupported(field, v, PROTOCOLS);
}

/** Validates a PodSpec at `path` (e.g. "spec" or "spec.template.spec"). */
function validatePodSpec(spec: unknown, path: string, e: Errs): void {
  if (!isPlainObject(spec)) {
    e.required(path);
    return;
  }
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    e.required(`${path}.containers`);
  } else {
    const names = new Set<string>();
    containers.forEach((c: unknown, i: number) =>
      validateContainer(c, `${path}.containers[${i}]`, names, e),
    );
  }
  if (spec.initContainers !== undefined) {
    if (!Array.isArray(spec.initContainers))
      e.invalid(`${path}.initContainers`, spec.initContainers, 'must be a list');
    else {
      const names = new Set<string>();
      spec.initContainers.forEach((c: unknown, i: number) =>
        validateContainer(c, `${path}.initContainers[${i}]`, names, e),
      );
    }
  }
  if (
    spec.restartPolicy !== undefined &&
    !['Always', 'OnFailure', 'Never'].includes(spec.restartPolicy as string)
  ) {
    e.notSupported(`${path}.restartPolicy`, spec.restartPolicy, ['Always', 'OnFailure', 'Never']);
  }
  if (spec.nodeName !== undefined && spec.nodeName !== '' && typeof spec.nodeName === 'string') {
    for (const msg of dns1123SubdomainErrors(spec.nodeName))
      e.invalid(`${path}.nodeName`, spec.nodeName, msg);
  }
  if (
    spec.dnsPolicy !== undefined &&
    !['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'].includes(
      spec.dnsPolicy as string,
    )
  ) {
    e.notSupported(`${path}.dnsPolicy`, spec.dnsPolicy, [
      'ClusterFirst',
      'ClusterFirstWithHostNet',
      'Default',
      'None',
    ]);
  }
}

function validateContainer(c: unknown, f: string, names: Set<string>, e: Errs): void {
  if (!isPlainObject(c)) {
    e.invalid(f, c, 'must be an object');
    return;
  }
  if (typeof c.name !== 'string' || c.name === '') e.required(`${f}.name`);
  else {
    for (const msg of dns1123LabelErrors(c.name)) e.invalid(`${f}.name`, c.name, msg);
    if (names.has(c.name)) e.duplicate(`${f}.name`, c.name);
    names.add(c.name);
  }
  if (typeof c.image !== 'string' || c.image.trim() === '') e.required(`${f}.image`);
  for (const key of ['command', 'args'] as const) {
    const v = c[key];
    if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string')))
      e.invalid(`${f}.${key}`, v, 'must be a list of strings');
  }
  if (c.ports !== undefined) {
    if (!Array.isArray(c.ports)) e.invalid(`${f}.ports`, c.ports, 'must be a list');
    else {
      const pnames = new Set<string>();
      c.ports.forEach((p: unknown, j: number) => {
        const pf = `${f}.ports[${j}]`;
        if (!isPlainObject(p)) return e.invalid(pf, p, 'must be an object');
        if (p.containerPort === undefined) e.required(`${pf}.containerPort`);
        else validPort(p.containerPort, `${pf}.containerPort`, e);
        if (p.hostPort !== undefined && p.hostPort !== 0)
          validPort(p.hostPort, `${pf}.hostPort`, e);
        validProtocol(p.protocol, `${pf}.protocol`, e);
        if (p.name !== undefined) {
          if (
            typeof p.name !== 'string' ||
            p.name.length > 15 ||
            !IANA_SVC_NAME.test(p.name) ||
            !/[a-z]/.test(p.name) ||
            p.name.includes('--')
          ) {
            e.invalid(
              `${pf}.name`,
              p.name,
              'must be no more than 15 characters, contain only lowercase letters, digits and hyphens, contain at least one letter (a-z), and not start, end or contain "--"',
            );
          } else if (pnames.has(p.name)) e.duplicate(`${pf}.name`, p.name);
          else pnames.add(p.name);
        }
      });
    }
  }
  if (c.env !== undefined) {
    if (!Array.isArray(c.env)) e.invalid(`${f}.env`, c.env, 'must be a list');
    else
      c.env.forEach((v: unknown, j: number) => {
        if (!isPlainObject(v) || typeof v.name !== 'string' || v.name === '')
          e.required(`${f}.env[${j}].name`);
      });
  }
}

function validateDeployment(o: KubeObject, e: Errs, what = 'deployment'): void {
  const spec = o.spec;
  if (!isPlainObject(spec)) return e.required('spec');
  if (
    spec.replicas !== undefined &&
    (!Number.isInteger(spec.replicas) || (spec.replicas as number) < 0)
  ) {
    e.invalid('spec.replicas', spec.replicas, 'must be greater than or equal to 0');
  }
  const sel = spec.selector as LabelSelector | undefined;
  if (!isPlainObject(sel)) e.required('spec.selector');
  else {
    validateLabels(sel.matchLabels, 'spec.selector.matchLabels', e);
    if (!sel.matchLabels && !sel.matchExpressions)
      e.invalid('spec.selector', sel, `empty selector is invalid for ${what}`);
  }
  const tpl = spec.template;
  if (!isPlainObject(tpl)) return e.required('spec.template');
  const tmeta = isPlainObject(tpl.metadata) ? tpl.metadata : {};
  validateLabels(tmeta.labels, 'spec.template.metadata.labels', e);
  if (isPlainObject(sel) && (sel.matchLabels || sel.matchExpressions)) {
    try {
      if (
        !matchesSelector(fromLabelSelector(sel), tmeta.labels as Record<string, string> | undefined)
      ) {
        e.invalid(
          'spec.template.metadata.labels',
          tmeta.labels ?? {},
          '`selector` does not match template `labels`',
        );
      }
    } catch (err) {
      e.invalid('spec.selector', sel, err instanceof Error ? err.message : String(err));
    }
  }
  validatePodSpec(tpl.spec, 'spec.template.spec', e);
  if (
    isPlainObject(tpl.spec) &&
    tpl.spec.restartPolicy !== undefined &&
    tpl.spec.restartPolicy !== 'Always'
  ) {
    e.notSupported('spec.template.spec.restartPolicy', tpl.spec.restartPolicy, ['Always']);
  }
}

const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];

function validateService(o: KubeObject, e: Errs): void {
  const spec = o.spec;
  if (!isPlainObject(spec)) return e.required('spec');
  const type = (spec.type as string | undefined) ?? 'ClusterIP';
  if (!SERVICE_TYPES.includes(type)) e.notSupported('spec.type', type, SERVICE_TYPES);
  const headless = spec.clusterIP === 'None';
  if (spec.clusterIP !== undefined && spec.clusterIP !== '' && !headless) {
    if (typeof spec.clusterIP !== 'string' || isIP(spec.clusterIP) === 0) {
      e.invalid(
        'spec.clusterIP',
        spec.clusterIP,
        'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
      );
    }
  }
  const ports = spec.ports;
  if (ports === undefined || (Array.isArray(ports) && ports.length === 0)) {
    if (type !== 'ExternalName' && !headless) e.required('spec.ports');
  } else if (!Array.isArray(ports)) e.invalid('spec.ports', ports, 'must be a list');
  else {
    const names = new Set<string>();
    ports.forEach((p: unknown, i: number) => {
      const f = `spec.ports[${i}]`;
      if (!isPlainObject(p)) return e.invalid(f, p, 'must be an object');
      if (ports.length > 1 && (p.name === undefined || p.name === '')) e.required(`${f}.name`);
      if (p.name !== undefined && p.name !== '') {
        if (typeof p.name !== 'string') e.invalid(`${f}.name`, p.name, 'must be a string');
        else {
          for (const msg of dns1123LabelErrors(p.name)) e.invalid(`${f}.name`, p.name, msg);
          if (names.has(p.name)) e.duplicate(`${f}.name`, p.name);
          names.add(p.name);
        }
      }
      if (p.port === undefined) e.required(`${f}.port`);
      else validPort(p.port, `${f}.port`, e);
      validProtocol(p.protocol, `${f}.protocol`, e);
      const tp = p.targetPort;
      if (tp !== undefined) {
        if (typeof tp === 'number') validPort(tp, `${f}.targetPort`, e);
        else if (typeof tp === 'string') {
          if (/^\d+$/.test(tp)) validPort(Number(tp), `${f}.targetPort`, e);
          else if (tp.length > 15 || !IANA_SVC_NAME.test(tp) || !/[a-z]/.test(tp)) {
            e.invalid(
              `${f}.targetPort`,
              tp,
              'must be a port number between 1 and 65535 or an IANA service name (at most 15 lowercase letters, digits and hyphens)',
            );
          }
        } else e.invalid(`${f}.targetPort`, tp, 'must be a number or a port name');
      }
      if (p.nodePort !== undefined && p.nodePort !== 0) {
        validPort(p.nodePort, `${f}.nodePort`, e);
        if (type === 'ClusterIP')
          e.list.push({
            type: 'FieldValueForbidden',
            field: `${f}.nodePort`,
            detail: "may not be used when `type` is 'ClusterIP'",
          });
      }
    });
  }
  if (spec.selector !== undefined && spec.selector !== null)
    validateLabels(spec.selector, 'spec.selector', e);
  if (
    spec.sessionAffinity !== undefined &&
    !['ClientIP', 'None'].includes(spec.sessionAffinity as string)
  ) {
    e.notSupported('spec.sessionAffinity', spec.sessionAffinity, ['ClientIP', 'None']);
  }
  if (
    type === 'ExternalName' &&
    (typeof spec.externalName !== 'string' || spec.externalName === '')
  )
    e.required('spec.externalName');
}

function validateEndpointSlice(o: KubeObject, e: Errs): void {
  const at = o.addressType;
  if (at === undefined) e.required('addressType');
  else if (!['IPv4', 'IPv6', 'FQDN'].includes(at as string))
    e.notSupported('addressType', at, ['FQDN', 'IPv4', 'IPv6']);
  const eps = o.endpoints;
  if (eps !== undefined && eps !== null) {
    if (!Array.isArray(eps)) e.invalid('endpoints', eps, 'must be a list');
    else
      eps.forEach((ep: unknown, i: number) => {
        const f = `endpoints[${i}]`;
        if (!isPlainObject(ep)) return e.invalid(f, ep, 'must be an object');
        const addrs = ep.addresses;
        if (!Array.isArray(addrs) || addrs.length === 0)
          e.required(`${f}.addresses`, 'must contain at least 1 address');
        else if (addrs.length > 100)
          e.invalid(`${f}.addresses`, addrs.length, 'must have at most 100 addresses');
        else
          addrs.forEach((a: unknown, j: number) => {
            const want = at === 'IPv6' ? 6 : at === 'IPv4' ? 4 : 0;
            if (want && (typeof a !== 'string' || isIP(a) !== want))
              e.invalid(`${f}.addresses[${j}]`, a, `must be a valid ${at} address`);
          });
        if (ep.nodeName !== undefined && typeof ep.nodeName === 'string') {
          for (const msg of dns1123SubdomainErrors(ep.nodeName))
            e.invalid(`${f}.nodeName`, ep.nodeName, msg);
        }
      });
  }
  const ports = o.ports;
  if (ports !== undefined && ports !== null) {
    if (!Array.isArray(ports)) e.invalid('ports', ports, 'must be a list');
    else
      ports.forEach((p: unknown, i: number) => {
        const f = `ports[${i}]`;
        if (!isPlainObject(p)) return e.invalid(f, p, 'must be an object');
        if (p.port !== undefined && p.port !== null) validPort(p.port, `${f}.port`, e, true);
        validProtocol(p.protocol, `${f}.protocol`, e);
        if (p.name !== undefined && p.name !== '' && typeof p.name === 'string') {
          for (const msg of dns1123LabelErrors(p.name)) e.invalid(`${f}.name`, p.name, msg);
        }
      });
  }
}

function validateNode(o: KubeObject, e: Errs): void {
  const spec = o.spec;
  if (spec === undefined) return;
  if (!isPlainObject(spec)) return e.invalid('spec', spec, 'must be an object');
  if (
    spec.podCIDR !== undefined &&
    spec.podCIDR !== '' &&
    (typeof spec.podCIDR !== 'string' || !isCIDR(spec.podCIDR))
  ) {
    e.invalid(
      'spec.podCIDR',
      spec.podCIDR,
      'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    );
  }
  if (Array.isArray(spec.podCIDRs)) {
    spec.podCIDRs.forEach((c: unknown, i: number) => {
      if (typeof c !== 'string' || !isCIDR(c))
        e.invalid(
          `spec.podCIDRs[${i}]`,
          c,
          'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        );
    });
  }
}

function validateServiceImport(o: KubeObject, e: Errs): void {
  const spec = o.spec;
  if (spec === undefined) return;
  if (!isPlainObject(spec)) return e.invalid('spec', spec, 'must be an object');
  if (spec.type !== undefined && !['ClusterSetIP', 'Headless'].includes(spec.type as string)) {
    e.notSupported('spec.type', spec.type, ['ClusterSetIP', 'Headless']);
  }
  if (Array.isArray(spec.ports))
    spec.ports.forEach((p: unknown, i: number) => {
      if (!isPlainObject(p)) return;
      if (p.port === undefined) e.required(`spec.ports[${i}].port`);
      else validPort(p.port, `spec.ports[${i}].port`, e);
      validProtocol(p.protocol, `spec.ports[${i}].protocol`, e);
    });
}

function validateCiliumIdentity(o: KubeObject, e: Errs): void {
  if (o['security-labels'] !== undefined && !isPlainObject(o['security-labels'])) {
    e.invalid('security-labels', o['security-labels'], 'must be a map of string to string');
  }
}

const VALIDATORS: Record<string, (o: KubeObject, e: Errs) => void> = {
  Pod: (o, e) => validatePodSpec(o.spec, 'spec', e),
  Deployment: (o, e) => validateDeployment(o, e),
  // a DaemonSet's spec is a Deployment's without replicas and strategy
  DaemonSet: (o, e) => validateDeployment(o, e, 'daemonset'),
  Service: validateService,
  EndpointSlice: validateEndpointSlice,
  Node: validateNode,
  CiliumNetworkPolicy: (o, e) => e.list.push(...ciliumPolicyErrors(o)),
  CiliumClusterwideNetworkPolicy: (o, e) => e.list.push(...ciliumPolicyErrors(o)),
  NetworkPolicy: (o, e) => e.list.push(...networkPolicyErrors(o)),
  ServiceImport: validateServiceImport,
  CiliumIdentity: validateCiliumIdentity,
};
