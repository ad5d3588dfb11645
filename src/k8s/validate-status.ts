/**
 * Validation of an object's `status`, as validation.ts does for spec: status
 * is written by agents, kubelets and controllers and read by every other
 * daemon (pod IPs become ipcache entries and routes), so a status update gets
 * the same checks as a spec update. Checks shapes and the fields consumers
 * use: IPs parse, phases and condition statuses are from their enums, counts
 * are non-negative integers.
 */
import { isIP } from 'node:net';
import type { KubeObject } from './objects.js';
import { invalid, type FieldError } from './status.js';

const POD_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'];
const NAMESPACE_PHASES = ['Active', 'Terminating'];
const CONDITION_STATUSES = ['True', 'False', 'Unknown'];

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

class Collect {
  readonly list: FieldError[] = [];
  bad(field: string, value: unknown, detail: string): void {
    this.list.push({ type: 'FieldValueInvalid', field, value, detail });
  }
  notSupported(field: string, value: unknown, allowed: string[]): void {
    this.list.push({
      type: 'FieldValueNotSupported',
      field,
      value,
      detail: `supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`,
    });
  }
  ip(field: string, v: unknown): void {
    if (v === undefined || v === '') return;
    if (typeof v !== 'string' || isIP(v) === 0) this.bad(field, v, 'must be a valid IP address');
  }
  oneOf(field: string, v: unknown, allowed: string[]): void {
    if (v === undefined) return;
    if (typeof v !== 'string' || !allowed.includes(v)) this.notSupported(field, v, allowed);
  }
  count(field: string, v: unknown): void {
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      this.bad(field, v, 'must be greater than or equal to 0');
  }
  list_(field: string, v: unknown, each: (item: Record<string, unknown>, f: string) => void): void {
    if (v === undefined || v === null) return;
    if (!Array.isArray(v)) return this.bad(field, v, 'must be a list');
    v.forEach((item, i) => {
      const f = `${field}[${i}]`;
      if (!isObj(item)) this.bad(f, item, 'must be an object');
      else each(item, f);
    });
  }
  conditions(field: string, v: unknown): void {
    this.list_(field, v, (c, f) => {
      if (typeof c.type !== 'string' || c.type === '')
        this.list.push({ type: 'FieldValueRequired', field: `${f}.type`, detail: '' });
      this.oneOf(`${f}.status`, c.status, CONDITION_STATUSES);
    });
  }
}

/** Field errors of `obj.status` for its kind (empty when valid or absent). */
export function statusErrors(obj: KubeObject): FieldError[] {
  const e = new Collect();
  const st: unknown = obj.status;
  if (st === undefined || st === null) return e.list;
  if (!isObj(st)) {
    e.bad('status', st, 'must be an object');
    return e.list;
  }
  e.conditions('status.conditions', st.conditions);
  switch (obj.kind) {
    case 'Pod':
      e.oneOf('status.phase', st.phase, POD_PHASES);
      e.ip('status.podIP', st.podIP);
      e.ip('status.hostIP', st.hostIP);
      e.list_('status.podIPs', st.podIPs, (p, f) => e.ip(`${f}.ip`, p.ip));
      e.list_('status.hostIPs', st.hostIPs, (p, f) => e.ip(`${f}.ip`, p.ip));
      break;
    case 'Node':
      e.list_('status.addresses', st.addresses, (a, f) => {
        if (typeof a.type !== 'string') e.bad(`${f}.type`, a.type, 'must be a string');
        if (typeof a.address !== 'string') e.bad(`${f}.address`, a.address, 'must be a string');
        else if (a.type === 'InternalIP' || a.type === 'ExternalIP')
          e.ip(`${f}.address`, a.address);
      });
      break;
    case 'Namespace':
      e.oneOf('status.phase', st.phase, NAMESPACE_PHASES);
      break;
    case 'Service':
      if (st.loadBalancer !== undefined) {
        if (!isObj(st.loadBalancer))
          e.bad('status.loadBalancer', st.loadBalancer, 'must be an object');
        else
          e.list_('status.loadBalancer.ingress', st.loadBalancer.ingress, (i, f) =>
            e.ip(`${f}.ip`, i.ip),
          );
      }
      break;
    case 'Deployment':
      for (const k of [
        'replicas',
        'readyReplicas',
        'availableReplicas',
        'updatedReplicas',
        'unavailableReplicas',
        'observedGeneration',
      ])
        e.count(`status.${k}`, st[k]);
      break;
  }
  return e.list;
}

/**
 * Validates `obj.status`.
 * @throws ApiError 422 Invalid listing every status field error.
 */
export function validateStatus(obj: KubeObject, group: string): void {
  const errors = statusErrors(obj);
  if (errors.length) throw invalid(obj.kind, group, obj.metadata?.name ?? '', errors);
}
