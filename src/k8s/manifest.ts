/**
 * Manifest files: multi-document YAML (or JSON), `kind: List` expanded,
 * every document validated before any is returned, so a caller that applies
 * the result applies all or nothing. Problems are reported per document in
 * Kubernetes Status form (the same messages the API server would give).
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import { TendrilError } from '../util/errors.js';
import { isPlainObject } from './mergepatch.js';
import type { KubeObject } from './objects.js';
import type { ResourceInfo } from './resources.js';
import { ApiError, failure, invalid, type FieldError, type Status } from './status.js';
import { validateObject } from './validation.js';

/** One parsed, validated document. */
export interface ManifestObject {
  object: KubeObject;
  info: ResourceInfo;
  /** 1-based index of the YAML document in the source. */
  document: number;
  /** 1-based line where the document starts. */
  line: number;
}

/** One document's problem. */
export interface ManifestProblem {
  document: number;
  line: number;
  status: Status;
}

/** Thrown when any document is malformed or invalid; lists every problem. Code `K8S_INVALID_MANIFEST`. */
export class ManifestError extends TendrilError {
  readonly problems: ManifestProblem[];
  constructor(source: string, problems: ManifestProblem[]) {
    const lines = problems.map(
      (p) => `  document ${p.document} (line ${p.line}): ${p.status.message}`,
    );
    super(
      'K8S_INVALID_MANIFEST',
      `error validating "${source}": nothing was applied:\n${lines.join('\n')}`,
      {
        hint: 'fix the fields named above and apply again',
      },
    );
    this.name = 'ManifestError';
    this.problems = problems;
  }
}

/**
 * Parses and validates a manifest text.
 * @param source a name for messages (file path or "-" for stdin)
 * @throws ManifestError listing every malformed or invalid document (nothing is returned then).
 */
export function parseManifest(text: string, source = '-'): ManifestObject[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: true });
  const problems: ManifestProblem[] = [];
  const out: ManifestObject[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const document = i + 1;
    const start = doc.range?.[0] ?? 0;
    const line = lc.linePos(start).line;
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const pos = e.linePos?.[0];
      problems.push({
        document,
        line: pos?.line ?? line,
        status: failure(
          400,
          'BadRequest',
          `error parsing ${source}: yaml: line ${pos?.line ?? line}: ${e.message.split('\n')[0]!.replace(/:$/, '')}`,
        ),
      });
      return;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) return; // empty document (e.g. a trailing ---)
    const items: unknown[] =
      isPlainObject(value) &&
      typeof value.kind === 'string' &&
      value.kind.endsWith('List') &&
      Array.isArray(value.items)
        ? value.items
        : [value];
    for (const item of items) {
      try {
        const info = validateObject(item as KubeObject, { allowGenerateName: true });
        checkUnknownFields(item as KubeObject, info);
        out.push({ object: item as KubeObject, info, document, line });
      } catch (err) {
        if (err instanceof ApiError) problems.push({ document, line, status: err.status });
        else throw err;
      }
    }
  });
  if (problems.length > 0) throw new ManifestError(source, problems);
  return out;
}

/** Top-level fields of each kind besides apiVersion, kind, metadata. */
const TOP_FIELDS: Record<string, string[]> = {
  EndpointSlice: ['addressType', 'endpoints', 'ports'],
  CiliumIdentity: ['security-labels'],
  CiliumNetworkPolicy: ['spec', 'specs', 'status'],
  CiliumClusterwideNetworkPolicy: ['spec', 'specs', 'status'],
  CiliumEndpoint: ['status'],
};
const DEFAULT_TOP = ['spec', 'status'];
const META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
  'selfLink',
]);

/**
 * Strict checks of a manifest (as kubectl's default --validate=strict): an
 * unknown top-level or metadata field (a typo such as `metadata.lables`) is an error.
 * @throws ApiError 422 naming the fields.
 */
function checkUnknownFields(o: KubeObject, info: ResourceInfo): void {
  const allowed = new Set([
    'apiVersion',
    'kind',
    'metadata',
    ...(TOP_FIELDS[info.kind] ?? DEFAULT_TOP),
  ]);
  const errs: FieldError[] = [];
  for (const k of Object.keys(o)) {
    if (!allowed.has(k))
      errs.push({
        type: 'FieldValueInvalid',
        field: k,
        value: k,
        detail: `unknown field "${k}" (known: ${[...allowed].join(', ')})`,
      });
  }
  for (const k of Object.keys(o.metadata ?? {})) {
    if (!META_FIELDS.has(k))
      errs.push({
        type: 'FieldValueInvalid',
        field: `metadata.${k}`,
        value: k,
        detail: `unknown field "metadata.${k}"`,
      });
  }
  if (errs.length) throw invalid(info.kind, info.group, o.metadata?.name ?? '', errs);
}
