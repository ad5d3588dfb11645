/**
 * `tendril [--context C] get KIND[,KIND...] [NAME...] [-n NS | -A] [-l SEL]
 * [--field-selector SEL] [-o FORMAT] [--sort-by PATH] [--no-headers] [-w | --watch-only]`,
 * as kubectl prints it: tables (several kinds print one section each, names
 * prefixed with kind.group); `-o json|yaml` a `List` for a kind (even of one
 * object) and the object only for one name; `-o name`; `-o jsonpath=` and
 * `-o custom-columns=` in kubectl's dialect (src/k8s/jsonpath.ts); `-w`
 * streams changes (get-watch.ts).
 */
import type { Command } from 'commander';
import type { KubeClient } from '../k8s/client.js';
import { connect } from '../k8s/connect.js';
import type { KubeObject } from '../k8s/objects.js';
import {
  apiVersionOf,
  RESOURCES,
  resolveResourceName,
  type ResourceInfo,
} from '../k8s/resources.js';
import { ApiError } from '../k8s/status.js';
import { TendrilError } from '../util/errors.js';
import { formatGet, parseOutput, type Section } from './get-format.js';
import { watchGet } from './get-watch.js';
import { ExitError } from './main.js';

/** Options of `get`. */
export interface GetOptions {
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  fieldSelector?: string;
  output?: string;
  sortBy?: string;
  /** commander's name for --no-headers (false when given). */
  headers?: boolean;
  /** `--allow-missing-template-keys[=true|false]` as commander gives it. */
  allowMissingTemplateKeys?: string | boolean;
  watch?: boolean;
  watchOnly?: boolean;
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
      'list objects as kubectl does (e.g. get deploy,svc,endpointslices; get pods -o wide; get pods -w)',
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
    .option(
      '-o, --output <format>',
      'wide | json | yaml | name | jsonpath=TEMPLATE | jsonpath-file=FILE | custom-columns=H:PATH,... | custom-columns-file=FILE',
    )
    .option('--sort-by <path>', 'sort by a JSONPath field (e.g. .metadata.name, {.status.podIP})')
    .option('--no-headers', 'print tables and custom columns without the header line')
    .option(
      '--allow-missing-template-keys <bool>',
      'with -o jsonpath: a missing field prints nothing (true, the default) or is an error (false)',
    )
    .option('-w, --watch', 'after listing, print each change (one kind)')
    .option('--watch-only', 'print changes only, without the initial list')
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
        throw new TendrilError('CLI_BAD_ARGS', 'names may only be given with a single kind', {
          hint: 'e.g. tendril get svc echo',
        });
      const allowMissing = parseBool(
        opts.allowMissingTemplateKeys,
        '--allow-missing-template-keys',
      );
      // Fail on a bad -o before talking to the server.
      parseOutput(opts.output);
      const { client, context } = connect((cmd.optsWithGlobals() as { context?: string }).context);
      try {
        const namespace = opts.namespace ?? context.namespace;
        if (opts.watch || opts.watchOnly) {
          if (infos.length !== 1)
            throw new TendrilError(
              'GET_WATCH_KINDS',
              'you may only specify a single resource type',
              {
                hint: 'watch one kind, e.g. tendril get pods -w',
              },
            );
          if (names.length > 1)
            throw new TendrilError(
              'GET_WATCH_NAMES',
              'watch is only supported on individual resources and resource collections',
              {
                hint: 'watch one name, or a selector: tendril get pods -l app=web -w',
              },
            );
          const ac = new AbortController();
          const stop = () => ac.abort();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          try {
            await watchGet(client, infos[0]!, {
              namespace: opts.allNamespaces ? undefined : namespace,
              allNamespaces: opts.allNamespaces,
              name: names[0],
              selector: opts.selector,
              fieldSelector: opts.fieldSelector,
              output: opts.output,
              noHeaders: opts.headers === false,
              allowMissingTemplateKeys: allowMissing,
              watchOnly: Boolean(opts.watchOnly),
              write: (text) => process.stdout.write(text),
              signal: ac.signal,
            });
          } finally {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
          }
          return;
        }
        const { sections, errors } = await fetchSections(client, infos, names, {
          ...opts,
          namespace,
        });
        const text = formatGet(sections, {
          output: opts.output,
          allNamespaces: opts.allNamespaces,
          multi,
          singleItem: names.length === 1 && infos.length === 1,
          sortBy: opts.sortBy,
          noHeaders: opts.headers === false,
          allowMissingTemplateKeys: allowMissing,
        });
        process.stdout.write(text);
        const total = sections.reduce((a, s) => a + s.objects.length, 0);
        if (total === 0 && errors.length === 0 && parseOutput(opts.output).type === 'table') {
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

/** A kubectl boolean flag value (true/false, 1/0). @throws TendrilError BAD_FLAG */
function parseBool(v: string | boolean | undefined, flag: string): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  if (['true', '1', 't', 'T', 'TRUE', 'True'].includes(v)) return true;
  if (['false', '0', 'f', 'F', 'FALSE', 'False'].includes(v)) return false;
  throw new TendrilError('BAD_FLAG', `invalid argument "${v}" for "${flag}"`, {
    hint: `use ${flag}=true or ${flag}=false`,
  });
}
