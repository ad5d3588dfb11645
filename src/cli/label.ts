/**
 * `tendril label|annotate KIND NAME... | KIND/NAME... | KIND -l SEL | KIND
 * --all [-A] KEY=VALUE... KEY-... [--overwrite] [--resource-version RV]
 * [--dry-run=client|server] [-o name] [--list]`, as kubectl: an existing
 * key keeps its value unless --overwrite (`'a' already has a value (b), and
 * --overwrite is false`), output `deployment.apps/echo labeled|unlabeled|not
 * labeled` (annotate: always `annotated`), exit status 1 on any failure.
 */
import type { Command } from 'commander';
import { connect } from '../k8s/connect.js';
import { deepEqual } from '../k8s/mergepatch.js';
import { apiVersionOf } from '../k8s/resources.js';
import { ExitError } from './main.js';
import {
  asKubectl,
  dryRunSuffix,
  fetchTarget,
  objectRef,
  parseDryRun,
  printError,
  selectTargets,
  UsageError,
} from './resource-args.js';

interface LabelOpts {
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  all?: boolean;
  overwrite?: boolean;
  resourceVersion?: string;
  dryRun?: string | boolean;
  output?: string;
  list?: boolean;
}

/** A parsed `KEY=VALUE` / `KEY-` list. */
export interface MapChanges {
  set: Array<[string, string]>;
  remove: string[];
}

/**
 * Splits a verb's arguments into resources and changes: an argument with
 * "=" or ending in "-" is a change; resources come first.
 * @throws UsageError as kubectl words it.
 */
export function splitChanges(
  args: string[],
  what: 'label' | 'annotation',
): { resources: string[]; changes: MapChanges } {
  const resources: string[] = [];
  const specs: string[] = [];
  for (const a of args) {
    const isChange = a.includes('=') || a.endsWith('-');
    if (isChange) specs.push(a);
    else if (specs.length > 0)
      throw new UsageError(`all resources must be specified before ${what} changes: ${a}`);
    else resources.push(a);
  }
  const changes: MapChanges = { set: [], remove: [] };
  for (const s of specs) {
    const eq = s.indexOf('=');
    if (eq >= 0) {
      const k = s.slice(0, eq);
      const v = s.slice(eq + 1);
      if (!k) continue; // kubectl ignores "=x"
      if (what === 'label' && v.includes('=')) throw new UsageError(`invalid label spec: ${s}`);
      changes.set.push([k, v]);
    } else {
      const k = s.slice(0, -1);
      if (k) changes.remove.push(k);
    }
  }
  return { resources, changes };
}

function register1(program: Command, what: 'label' | 'annotation'): void {
  const verb = what === 'label' ? 'label' : 'annotate';
  const field = what === 'label' ? 'labels' : 'annotations';
  program
    .command(verb)
    .description(
      what === 'label'
        ? 'update the labels of objects (kubectl label)'
        : 'update the annotations of objects (kubectl annotate)',
    )
    .argument('[args...]', 'KIND NAME... | KIND/NAME..., then KEY=VALUE... and KEY-...')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-A, --all-namespaces', 'with --all or -l: across all namespaces')
    .option('-l, --selector <selector>', 'every object matching this label selector')
    .option('--all', 'every object of the kind in the namespace')
    .option('--overwrite', `allow changing the value of an existing ${what}`)
    .option('--resource-version <rv>', 'only update if the object is at this resourceVersion')
    .option('--dry-run [mode]', 'client or server: show what would happen without writing')
    .option('-o, --output <format>', 'name: print only KIND/NAME')
    .option('--list', `print the ${field} of each object`)
    .action(async (args: string[], opts: LabelOpts, cmd: Command) => {
      await asKubectl(async () => {
        const { resources, changes } = splitChanges(args, what);
        if (resources.length === 0)
          throw new UsageError(
            'one or more resources must be specified as <resource> <name> or <resource>/<name>',
          );
        if (!opts.list && changes.set.length === 0 && changes.remove.length === 0)
          throw new UsageError(`at least one ${what} update is required`);
        if (opts.output !== undefined && opts.output !== 'name')
          throw new UsageError(
            `unable to match a printer suitable for the output format "${opts.output}", allowed formats are: name`,
          );
        const dryRun = parseDryRun(opts.dryRun);
        const { client, context } = connect(
          (cmd.optsWithGlobals() as { context?: string }).context,
        );
        try {
          const targets = await selectTargets(client, resources, {
            namespace: opts.namespace ?? context.namespace,
            allNamespaces: opts.allNamespaces,
            selector: opts.selector,
            all: opts.all,
          });
          let failed = false;
          for (const t of targets) {
            try {
              const obj = await fetchTarget(client, t);
              const cur: Record<string, string> = { ...(obj.metadata[field] ?? {}) };
              const clashes = changes.set.filter(
                ([k, v]) => cur[k] !== undefined && cur[k] !== v && !opts.overwrite,
              );
              if (clashes.length > 0) {
                const msgs = clashes.map(([k]) => `'${k}' already has a value (${cur[k]})`);
                if (what === 'annotation')
                  throw new UsageError(
                    `--overwrite is false but found the following declared annotation(s): ${msgs.join('; ')}`,
                  );
                if (msgs.length === 1) throw new UsageError(`${msgs[0]}, and --overwrite is false`);
                process.stderr.write(msgs.map((m) => `${m}, and --overwrite is false\n`).join(''));
                throw new ExitError(1);
              }
              const next = { ...cur };
              for (const k of changes.remove) {
                if (!(k in next)) {
                  if (what === 'label') process.stdout.write(`label "${k}" not found.\n`);
                } else delete next[k];
              }
              for (const [k, v] of changes.set) next[k] = v;
              if (opts.list) {
                for (const [k, v] of Object.entries(next)) process.stdout.write(`${k}=${v}\n`);
                if (changes.set.length === 0 && changes.remove.length === 0) continue;
              }
              const changed = !deepEqual(cur, next);
              if (changed && dryRun !== 'client') {
                const patch: Record<string, unknown> = {
                  [field]: Object.fromEntries([
                    ...Object.keys(cur)
                      .filter((k) => !(k in next))
                      .map((k) => [k, null]),
                    ...Object.entries(next).filter(([k, v]) => cur[k] !== v),
                  ]),
                };
                if (opts.resourceVersion) patch.resourceVersion = opts.resourceVersion;
                await client.patch(
                  apiVersionOf(t.info),
                  t.info.kind,
                  t.name,
                  { metadata: patch },
                  { namespace: t.namespace, dryRun: dryRun === 'server' },
                );
              }
              let msg: string;
              if (what === 'annotation') msg = 'annotated';
              else if (!changed) msg = 'not labeled';
              else {
                // kubectl says "unlabeled" when the object got smaller and --overwrite was not given.
                const before = JSON.stringify(cur).length;
                const after = JSON.stringify(next).length;
                msg = !opts.overwrite && after < before ? 'unlabeled' : 'labeled';
              }
              process.stdout.write(
                opts.output === 'name'
                  ? `${objectRef(t)}\n`
                  : `${objectRef(t)} ${msg}${dryRunSuffix(dryRun)}\n`,
              );
            } catch (err) {
              if (err instanceof UsageError || err instanceof ExitError) throw err;
              printError(err);
              failed = true;
            }
          }
          if (failed) throw new ExitError(1);
        } finally {
          client.close();
        }
      });
    });
}

/** Registers `tendril label` and `tendril annotate`. */
export function register(program: Command): void {
  register1(program, 'label');
  register1(program, 'annotation');
}
