/**
 * `tendril [--context C] get KIND[,KIND...] [NAME...] [-n NS | -A] [-l SEL]
 * [--field-selector SEL] [-o wide|json|yaml|name]`: kubectl-like tables
 * (several kinds print one section each, names prefixed with kind.group).
 */
import type { Command } from 'commander';
import type { KubeClient } from '../k8s/client.js';
import { connect } from '../k8s/connect.js';
import type { KubeObject } from '../k8s/objects.js';
import { kubectlJSON, kubectlYAML, printerFor, renderTable } from '../k8s/printers.js';
import {
  apiVersionOf,
  kindDotGroup,
  RESOURCES,
  resolveResourceName,
  type ResourceInfo,
} from '../k8s/resources.js';
import { ApiError } from '../k8s/status.js';
import { TendrilError } from '../util/errors.js';
import { ExitError } from './main.js';

/** Options of `get`. */
export interface GetOptions {
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  fieldSelector?: string;
  output?: string;
}

/** One requested kind and its objects. */
interface Section {
  info: ResourceInfo;
  objects: KubeObject[];
}

/**
 * Formats sections as `get` prints them.
 * @param multi true when several kinds were asked for (names get a kind prefix)
 */
export function formatGet(
  sections: Section[],
  options: {
    output?: string;
    allNamespaces?: boolean;
    multi: boolean;
    /** One kind and one name were asked for (`get pod NAME`): print the object, not a List. */
    singleItem?: boolean;
    now?: number;
  },
): string {
  const now = options.now ?? Date.now();
  const out = options.output ?? '';
  const all = sections.flatMap((s) => s.objects.map((o) => withTypeMeta(o, s.info)));
  if (out === 'json' || out === 'yaml') {
    const doc = listOrObject(all, options.singleItem === true && !options.multi);
    return out === 'json' ? kubectlJSON(doc) + '\n' : kubectlYAML(doc);
  }
  if (out === 'name')
    return (
      sections
        .flatMap((s) => s.objects.map((o) => `${kindDotGroup(s.info)}/${o.metadata.name}`))
        .join('\n') + (all.length ? '\n' : '')
    );
  if (out !== '' && out !== 'wide') {
    throw new TendrilError(
      'cli.BadOutput',
      `unable to match a printer suitable for the output format "${out}"`,
      { hint: 'allowed formats are: json, name, wide, yaml' },
    );
  }
  const wide = out === 'wide';
  const blocks: string[] = [];
  for (const s of sections) {
    if (s.objects.length === 0) continue;
    const p = printerFor(s.info.kind);
    const idx = p.columns.map((c, i) => (c.priority === 0 || wide ? i : -1)).filter((i) => i >= 0);
    const headers = idx.map((i) => p.columns[i]!.name.toUpperCase());
    const showNs = options.allNamespaces && s.info.namespaced;
    const rows = s.objects.map((o) => {
      const cells = p.cells(o, now);
      const picked = idx.map((i) => cells[i]!);
      if (options.multi) picked[0] = `${kindDotGroup(s.info)}/${picked[0]}`;
      return showNs ? [o.metadata.namespace ?? '', ...picked] : picked;
    });
    blocks.push(renderTable(showNs ? ['NAMESPACE', ...headers] : headers, rows));
  }
  return blocks.join('\n');
}

/** An object with apiVersion and kind set (list items from a server may lack them; kubectl adds them). */
function withTypeMeta(o: KubeObject, info: ResourceInfo): KubeObject {
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

/** Fetches the objects of each kind (by name, or listed). Missing names are errors printed kubectl style. */
export async function fetchSections(
  client: KubeClient,
  infos: ResourceInfo[],
  names: string[],
  options: GetOptions & { namespace: string },
): Promise<{ sections: Section[]; errors: string[] }> {
  const sections: Section[] = [];
  const errors: string[] = [];
  for (const info of infos) {
    const av = apiVersionOf(info);
    const ns = options.allNamespaces ? undefined : options.namespace;
    if (names.length) {
      const objects: KubeObject[] = [];
      for (const n of names) {
        try {
          objects.push(await client.get(av, info.kind, n, { namespace: ns ?? options.namespace }));
        } catch (err) {
          if (err instanceof ApiError)
            errors.push(`Error from server (${err.reason}): ${err.message}`);
          else throw err;
        }
      }
      sections.push({ info, objects });
    } else {
      const list = await client.list(av, info.kind, {
        namespace: ns,
        labelSelector: options.selector,
        fieldSelector: options.fieldSelector,
      });
      sections.push({ info, objects: list.items });
    }
  }
  return { sections, errors };
}

/** Registers `tendril get`. */
export function register(program: Command): void {
  program
    .command('get')
    .description(
      'list objects as kubectl does (e.g. get deploy,svc,endpointslices; get pods -o wide)',
    )
    .argument(
      '<kinds>',
      'kind(s), comma-separated: plural, singular, short name or kind.group (pods, svc, deploy, endpointslices, ...)',
    )
    .argument('[names...]', 'object names')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .option('-l, --selector <selector>', 'label selector (e.g. app=echo, tier in (a,b), !canary)')
    .option('--field-selector <selector>', 'field selector (metadata.name, metadata.namespace)')
    .option('-o, --output <format>', 'wide | json | yaml | name')
    .action(async (kinds: string, names: string[], opts: GetOptions, cmd: Command) => {
      const infos = kinds
        .split(',')
        .filter(Boolean)
        .flatMap((k) =>
          // `all` is the category, as in kubectl: pods, services, deployments.
          k === 'all'
            ? RESOURCES.filter((r) => r.categories.includes('all'))
            : [resolveResourceName(k)],
        );
      const multi = infos.length > 1 || kinds === 'all';
      if (names.length && infos.length > 1)
        throw new TendrilError('cli.BadArgs', 'names may only be given with a single kind', {
          hint: 'e.g. tendril get svc echo',
        });
      const { client, context } = connect((cmd.optsWithGlobals() as { context?: string }).context);
      try {
        const namespace = opts.namespace ?? context.namespace;
        const { sections, errors } = await fetchSections(client, infos, names, {
          ...opts,
          namespace,
        });
        const text = formatGet(sections, {
          output: opts.output,
          allNamespaces: opts.allNamespaces,
          multi,
          singleItem: names.length === 1 && infos.length === 1,
        });
        process.stdout.write(text);
        const total = sections.reduce((a, s) => a + s.objects.length, 0);
        if (total === 0 && errors.length === 0 && !['json', 'yaml'].includes(opts.output ?? '')) {
          process.stderr.write(
            opts.allNamespaces || infos.every((i) => !i.namespaced)
              ? 'No resources found\n'
              : `No resources found in ${namespace} namespace.\n`,
          );
        }
        if (errors.length) {
          process.stderr.write(errors.join('\n') + '\n');
          throw new ExitError(1);
        }
      } finally {
        client.close();
      }
    });
}
