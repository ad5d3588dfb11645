/**
 * How `tendril get` prints objects, as kubectl: tables (kubectl's columns,
 * sections per kind), `-o json|yaml` (a `List` for a kind even of one object,
 * the object for one name), `-o name`, `-o jsonpath=` and `-o custom-columns=`
 * (src/k8s/jsonpath.ts), and `--sort-by`. Shared by get.ts and get-watch.ts.
 */
import { readFileSync } from 'node:fs';
import {
  goSprint,
  parseJsonPath,
  relaxedJsonPath,
  sortLess,
  type JsonPath,
} from '../k8s/jsonpath.js';
import type { KubeObject } from '../k8s/objects.js';
import { kubectlJSON, kubectlYAML, printerFor, renderTable } from '../k8s/printers.js';
import { apiVersionOf, kindDotGroup, type ResourceInfo } from '../k8s/resources.js';
import { TendrilError } from '../util/errors.js';

/** One requested kind and its objects. */
export interface Section {
  info: ResourceInfo;
  objects: KubeObject[];
}

/** One column of `-o custom-columns`. */
export interface CustomColumn {
  header: string;
  path: JsonPath;
}

/** An `-o` value, parsed. */
export type OutputSpec =
  | { type: 'table'; wide: boolean }
  | { type: 'json' | 'yaml' | 'name' }
  | { type: 'jsonpath'; path: JsonPath }
  | { type: 'custom-columns'; columns: CustomColumn[] };

const FORMATS =
  'custom-columns, custom-columns-file, json, jsonpath, jsonpath-file, name, wide, yaml';
const COLUMNS_EXAMPLE = 'e.g. -o custom-columns=NAME:.metadata.name,NODE:.spec.nodeName';

function badOutput(message: string, hint = `allowed formats are: ${FORMATS}`): TendrilError {
  return new TendrilError('GET_BAD_OUTPUT', message, { hint });
}

/**
 * Parses kubectl columns (`NAME:.metadata.name,IMAGE:.spec.containers[*].image`).
 * @throws TendrilError GET_BAD_OUTPUT, JsonPathParseError
 */
export function parseCustomColumns(spec: string): CustomColumn[] {
  if (spec === '')
    throw badOutput('custom-columns format specified but no custom columns given', COLUMNS_EXAMPLE);
  return spec.split(',').map((part) => {
    const i = part.indexOf(':');
    if (i < 0)
      throw badOutput(
        `unexpected custom-columns spec: ${part}, expected <header>:<json-path-expr>`,
        COLUMNS_EXAMPLE,
      );
    return { header: part.slice(0, i), path: parseJsonPath(relaxedJsonPath(part.slice(i + 1))) };
  });
}

/**
 * kubectl's custom-columns file: a line of headers, then a line of paths.
 * @throws TendrilError GET_BAD_OUTPUT, JsonPathParseError
 */
export function parseCustomColumnsFile(text: string): CustomColumn[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const headers = (lines[0] ?? '').trim().split(/\s+/);
  const paths = (lines[1] ?? '').trim().split(/\s+/);
  if (lines.length < 2 || headers.length !== paths.length)
    throw badOutput(
      `custom-columns file: expected a line of headers and a line of as many paths, got ${lines.length} line(s)`,
      'e.g. a file with "NAME NODE" then ".metadata.name .spec.nodeName"',
    );
  return headers.map((header, i) => ({
    header,
    path: parseJsonPath(relaxedJsonPath(paths[i]!)),
  }));
}

/**
 * Parses `-o`: wide, json, yaml, name, jsonpath=T, jsonpath-file=F,
 * custom-columns=SPEC, custom-columns-file=F (files read with `readFile`).
 * @throws TendrilError GET_BAD_OUTPUT, JsonPathParseError
 */
export function parseOutput(
  output: string | undefined,
  readFile: (path: string) => string = (f) => readFileSync(f, 'utf8'),
): OutputSpec {
  const out = output ?? '';
  if (out === '' || out === 'wide') return { type: 'table', wide: out === 'wide' };
  if (out === 'json' || out === 'yaml' || out === 'name') return { type: out };
  const eq = out.indexOf('=');
  const format = eq < 0 ? out : out.slice(0, eq);
  const arg = eq < 0 ? '' : out.slice(eq + 1);
  const file = () => {
    if (arg === '')
      throw badOutput(`${format} format specified but no file given`, `e.g. -o ${format}=FILE`);
    try {
      return readFile(arg);
    } catch (err) {
      throw new TendrilError('GET_BAD_OUTPUT', `read ${format} ${arg}: ${(err as Error).message}`, {
        hint: `give -o ${format}= a readable file`,
        cause: err,
      });
    }
  };
  switch (format) {
    case 'jsonpath':
      if (arg === '')
        throw badOutput(
          'template format specified but no template given',
          `e.g. -o jsonpath='{.items[*].metadata.name}'`,
        );
      return { type: 'jsonpath', path: parseJsonPath(arg) };
    case 'jsonpath-file':
      return { type: 'jsonpath', path: parseJsonPath(file()) };
    case 'custom-columns':
      return { type: 'custom-columns', columns: parseCustomColumns(arg) };
    case 'custom-columns-file':
      return { type: 'custom-columns', columns: parseCustomColumnsFile(file()) };
    default:
      throw badOutput(`unable to match a printer suitable for the output format "${out}"`);
  }
}

/** Options of formatGet. */
export interface FormatOptions {
  output?: string;
  allNamespaces?: boolean;
  /** Several kinds were asked for (names get a kind prefix in tables). */
  multi: boolean;
  /** One kind and one name were asked for (`get pod NAME`): print the object, not a List. */
  singleItem?: boolean;
  sortBy?: string;
  noHeaders?: boolean;
  /** A jsonpath field missing in the data is not an error (default true, as kubectl). */
  allowMissingTemplateKeys?: boolean;
  now?: number;
  readFile?: (path: string) => string;
}

/**
 * Sorts each section's objects by a --sort-by path (kubectl's relaxed
 * JSONPath; kubectl's order: numbers, quantities, natural string order),
 * stably; objects without the field come first.
 * @throws TendrilError GET_SORT_BY when no object has the field; JsonPathParseError.
 */
export function sortSections(sections: Section[], sortBy: string): Section[] {
  const path = parseJsonPath(relaxedJsonPath(sortBy));
  const keyed = sections.map((s) =>
    s.objects.map((o, idx) => ({ o, idx, k: path.findResults(o)[0] ?? [] })),
  );
  const found = keyed.some((ks) => ks.some((x) => x.k.length > 0));
  if (!found && keyed.some((ks) => ks.length > 0))
    throw new TendrilError(
      'GET_SORT_BY',
      `couldn't find any field with path "${path.template}" in the list of objects`,
      { hint: 'check the path, e.g. --sort-by=.metadata.creationTimestamp' },
    );
  return sections.map((s, i) => ({
    info: s.info,
    objects: keyed[i]!.sort((a, b) => {
      if (a.k.length === 0 || b.k.length === 0)
        return a.k.length === b.k.length ? a.idx - b.idx : a.k.length === 0 ? -1 : 1;
      if (sortLess(a.k[0], b.k[0])) return -1;
      if (sortLess(b.k[0], a.k[0])) return 1;
      return a.idx - b.idx;
    }).map((x) => x.o),
  }));
}

/** The `-o custom-columns` cells of one object (kubectl: `<none>` when empty, values joined by commas). */
export function customColumnCells(o: unknown, columns: CustomColumn[]): string[] {
  return columns.map((c) => {
    const found = c.path.findResults(o);
    if (found.length === 0 || found[0]!.length === 0) return '<none>';
    return found.flat().map(goSprint).join(',');
  });
}

/** The header and rows of a section as kubectl's table (NAMESPACE first with -A). */
export function tableRows(
  s: Section,
  options: { wide: boolean; multi: boolean; allNamespaces?: boolean; now: number },
): { headers: string[]; rows: Array<Array<string | number>> } {
  const p = printerFor(s.info.kind);
  const idx = p.columns
    .map((c, i) => (c.priority === 0 || options.wide ? i : -1))
    .filter((i) => i >= 0);
  const headers = idx.map((i) => p.columns[i]!.name.toUpperCase());
  const showNs = options.allNamespaces && s.info.namespaced;
  const rows = s.objects.map((o) => {
    const cells = p.cells(o, options.now);
    const picked = idx.map((i) => cells[i]!);
    if (options.multi) picked[0] = `${kindDotGroup(s.info)}/${picked[0]}`;
    return showNs ? [o.metadata.namespace ?? '', ...picked] : picked;
  });
  return { headers: showNs ? ['NAMESPACE', ...headers] : headers, rows };
}

/**
 * Formats sections as `get` prints them.
 * @throws TendrilError GET_BAD_OUTPUT / GET_SORT_BY, JsonPathParseError, JsonPathExecError
 */
export function formatGet(sections: Section[], options: FormatOptions): string {
  const now = options.now ?? Date.now();
  const spec = parseOutput(options.output, options.readFile);
  if (options.sortBy) sections = sortSections(sections, options.sortBy);
  const all = sections.flatMap((s) => s.objects.map((o) => withTypeMeta(o, s.info)));
  const single = options.singleItem === true && !options.multi;
  switch (spec.type) {
    case 'json':
      return kubectlJSON(listOrObject(all, single)) + '\n';
    case 'yaml':
      return kubectlYAML(listOrObject(all, single));
    case 'jsonpath':
      return spec.path.execute(listOrObject(all, single), {
        allowMissingKeys: options.allowMissingTemplateKeys ?? true,
      });
    case 'name':
      return sections
        .flatMap((s) => s.objects.map((o) => `${kindDotGroup(s.info)}/${o.metadata.name}\n`))
        .join('');
    case 'custom-columns':
      return renderTable(
        spec.columns.map((c) => c.header),
        all.map((o) => customColumnCells(o, spec.columns)),
        { noHeaders: options.noHeaders },
      );
    case 'table': {
      const blocks: string[] = [];
      for (const s of sections) {
        if (s.objects.length === 0) continue;
        const t = tableRows(s, { ...options, wide: spec.wide, now });
        blocks.push(renderTable(t.headers, t.rows, { noHeaders: options.noHeaders }));
      }
      return blocks.join('\n');
    }
  }
}

/** An object with apiVersion and kind set (list items from a server may lack them; kubectl adds them). */
export function withTypeMeta(o: KubeObject, info: ResourceInfo): KubeObject {
  return o.apiVersion && o.kind ? o : { ...o, apiVersion: apiVersionOf(info), kind: info.kind };
}

/**
 * What kubectl prints for -o json|yaml|jsonpath: a `List` of every object,
 * even of one, unless exactly one object was asked for by name.
 */
export function listOrObject(objects: KubeObject[], singleItem: boolean): unknown {
  if (singleItem && objects.length === 1) return objects[0];
  return { apiVersion: 'v1', kind: 'List', items: objects, metadata: { resourceVersion: '' } };
}
