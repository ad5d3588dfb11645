/**
 * Label selectors (the string form `a=b,c!=d,e in (x,y),f notin (z),g,!h` and
 * the LabelSelector object form with matchLabels/matchExpressions) and field
 * selectors on metadata.name / metadata.namespace, with Kubernetes' semantics.
 */
import { badRequest } from './status.js';

/** One parsed requirement. */
export interface Requirement {
  key: string;
  op: 'in' | 'notin' | 'exists' | '!' | '=' | '!=';
  values: string[];
}

/** A parsed selector: every requirement must hold. Empty matches everything. */
export type Selector = Requirement[];

const KEY_RE =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/**
 * Parses a label selector string.
 * @throws ApiError 400 BadRequest naming the bad part.
 */
export function parseLabelSelector(text: string): Selector {
  const out: Selector = [];
  let i = 0;
  const s = text;
  const skipWs = () => {
    while (i < s.length && s[i] === ' ') i++;
  };
  const readWord = (): string => {
    skipWs();
    const start = i;
    while (i < s.length && !' ,=!()'.includes(s[i]!)) i++;
    return s.slice(start, i);
  };
  while (true) {
    skipWs();
    if (i >= s.length) break;
    let neg = false;
    if (s[i] === '!') {
      neg = true;
      i++;
    }
    const key = readWord();
    if (!key)
      throw badRequest(
        `unable to parse requirement: found '${s[i] ?? 'end of string'}', expected: identifier`,
      );
    if (key.length > 317 || !KEY_RE.test(key))
      throw badRequest(`unable to parse requirement: invalid label key "${key}"`);
    skipWs();
    if (neg) {
      out.push({ key, op: '!', values: [] });
    } else if (i >= s.length || s[i] === ',') {
      out.push({ key, op: 'exists', values: [] });
    } else if (s.startsWith('==', i) || s[i] === '=' || s.startsWith('!=', i)) {
      const op = s.startsWith('!=', i) ? '!=' : '=';
      i += s.startsWith('==', i) || op === '!=' ? 2 : 1;
      const v = readWord();
      checkValue(v);
      out.push({ key, op, values: [v] });
    } else {
      const word = readWord().toLowerCase();
      if (word !== 'in' && word !== 'notin')
        throw badRequest(
          `unable to parse requirement: found '${word}', expected: in, notin, =, ==, !=`,
        );
      skipWs();
      if (s[i] !== '(')
        throw badRequest(
          `unable to parse requirement: found '${s[i] ?? 'end of string'}', expected: '('`,
        );
      i++;
      const values: string[] = [];
      while (true) {
        const v = readWord();
        checkValue(v);
        if (v !== '') values.push(v);
        skipWs();
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === ')') {
          i++;
          break;
        }
        throw badRequest(
          `unable to parse requirement: found '${s[i] ?? 'end of string'}', expected: ',' or ')'`,
        );
      }
      if (word === 'in' && values.length === 0)
        throw badRequest(`for 'in' operator, values set can't be empty`);
      out.push({ key, op: word, values });
    }
    skipWs();
    if (i < s.length) {
      if (s[i] !== ',')
        throw badRequest(`unable to parse requirement: found '${s[i]}', expected: ','`);
      i++;
    }
  }
  return out;
}

function checkValue(v: string): void {
  if (v === '') return;
  if (v.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(v)) {
    throw badRequest(`unable to parse requirement: invalid label value: "${v}"`);
  }
}

/** True if the labels satisfy every requirement. */
export function matchesSelector(
  sel: Selector,
  labels: Record<string, string> | undefined,
): boolean {
  const l = labels ?? {};
  for (const r of sel) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
      case '=':
      case 'in':
        if (!has || !r.values.includes(v!)) return false;
        break;
      case '!=':
      case 'notin':
        if (has && r.values.includes(v!)) return false;
        break;
    }
  }
  return true;
}

/** The LabelSelector object of Deployments and policies. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }>;
}

/** Converts a LabelSelector object to requirements. An empty object selects everything. */
export function fromLabelSelector(ls: LabelSelector | undefined): Selector {
  const out: Selector = [];
  for (const [k, v] of Object.entries(ls?.matchLabels ?? {}))
    out.push({ key: k, op: '=', values: [v] });
  for (const e of ls?.matchExpressions ?? []) {
    const op = ({ In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' } as const)[
      e.operator
    ];
    if (!op) throw badRequest(`"${e.operator}" is not a valid label selector operator`);
    out.push({ key: e.key, op, values: e.values ?? [] });
  }
  return out;
}

/** Selector from a Service's `spec.selector` map (an empty map selects nothing, as for Services). */
export function fromMap(m: Record<string, string> | undefined): Selector | undefined {
  if (!m || Object.keys(m).length === 0) return undefined;
  return Object.entries(m).map(([k, v]) => ({ key: k, op: '=' as const, values: [v] }));
}

/** Renders requirements back to the string form. */
export function formatSelector(sel: Selector): string {
  return sel
    .map((r) => {
      switch (r.op) {
        case 'exists':
          return r.key;
        case '!':
          return `!${r.key}`;
        case '=':
          return `${r.key}=${r.values[0]}`;
        case '!=':
          return `${r.key}!=${r.values[0]}`;
        default:
          return `${r.key} ${r.op} (${r.values.join(',')})`;
      }
    })
    .join(',');
}

/** A parsed field selector: fields with =, == or !=. */
export type FieldSelector = Array<{ field: string; op: '=' | '!='; value: string }>;

/** Fields every kind can be selected by. */
const COMMON_FIELDS = ['metadata.name', 'metadata.namespace'];

/** Extra fields per kind, as the Kubernetes API server supports them. */
export const KIND_FIELDS: Record<string, string[]> = {
  Pod: [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'status.phase',
    'status.podIP',
  ],
  Node: ['spec.unschedulable'],
  Service: ['spec.clusterIP', 'spec.type'],
  Namespace: ['status.phase'],
  Event: [
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
};

/**
 * Parses a field selector. Every kind supports metadata.name and
 * metadata.namespace; some kinds more (KIND_FIELDS: pods by spec.nodeName,
 * status.phase, ...).
 * @throws ApiError 400 naming the unsupported field and the supported ones.
 */
export function parseFieldSelector(text: string, kind?: string): FieldSelector {
  const allowed = [...COMMON_FIELDS, ...((kind && KIND_FIELDS[kind]) || [])];
  const out: FieldSelector = [];
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    // Split at the first '=' or '!' by hand: a regex with a lazy field and \s* around
    // the operator backtracks quadratically over spaces (16 KB took 0.4 s).
    let at = 0;
    while (at < p.length && p[at] !== '=' && p[at] !== '!') at++;
    const opLen = p.startsWith('==', at) || p.startsWith('!=', at) ? 2 : p[at] === '=' ? 1 : 0;
    const field = p.slice(0, at).trimEnd();
    if (!field || opLen === 0)
      throw badRequest(
        `invalid selector: '${p.slice(0, 200)}'; expected field=value, field==value or field!=value`,
      );
    const m = [p, field, p.slice(at, at + opLen), p.slice(at + opLen).trimStart()];
    if (!allowed.includes(field)) {
      throw badRequest(
        `field label not supported: ${field} (supported${kind ? ` for ${kind}` : ''}: ${allowed.join(', ')})`,
      );
    }
    out.push({ field, op: m[2] === '!=' ? '!=' : '=', value: m[3]! });
  }
  return out;
}

function fieldValue(obj: Record<string, unknown>, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return path === 'spec.unschedulable' ? 'false' : '';
  return String(cur);
}

/** True if the object satisfies the field selector. */
export function matchesFields(
  sel: FieldSelector,
  obj: { metadata: { name?: string; namespace?: string } },
): boolean {
  for (const r of sel) {
    const v = fieldValue(obj as unknown as Record<string, unknown>, r.field);
    if ((v === r.value) !== (r.op === '=')) return false;
  }
  return true;
}
