/**
 * `tendril [--context C] delete KIND NAME... | -f FILE | KIND -l SEL | KIND
 * --all [-n NS | -A] [--grace-period N] [--now] [--ignore-not-found]
 * [--wait=false]`:
 * prints `deployment.apps "echo" deleted` like kubectl and, as kubectl,
 * waits until the objects are gone (pods end gracefully through their kubelet).
 */
import type { Command } from 'commander';
import type { KubeClient } from '../k8s/client.js';
import { connect } from '../k8s/connect.js';
import {
  apiVersionOf,
  kindDotGroup,
  resolveResourceName,
  type ResourceInfo,
} from '../k8s/resources.js';
import { ApiError } from '../k8s/status.js';
import { TendrilError, isNotFound } from '../util/errors.js';
import { parseDuration } from '../util/duration.js';
import { readManifests } from './apply.js';
import { ExitError } from './main.js';

interface DeleteOpts {
  filename?: string[];
  namespace?: string;
  selector?: string;
  all?: boolean;
  allNamespaces?: boolean;
  gracePeriod?: string;
  now?: boolean;
  ignoreNotFound?: boolean;
  wait: boolean;
  timeout: string;
}

async function waitGone(
  client: KubeClient,
  targets: Array<{ info: ResourceInfo; name: string; namespace?: string; uid?: string }>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const t of targets) {
    while (true) {
      const cur = await client.getOrUndefined(apiVersionOf(t.info), t.info.kind, t.name, {
        namespace: t.namespace,
      });
      if (!cur || (t.uid && cur.metadata.uid !== t.uid)) break;
      if (Date.now() > deadline) {
        throw new TendrilError(
          'CLI_TIMEOUT',
          `timed out waiting for ${kindDotGroup(t.info)} "${t.name}" to be deleted`,
          {
            hint: "is the node's kubelet running? `tendril lab list`; or delete with --now / --grace-period=0",
          },
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Registers `tendril delete`. */
export function register(program: Command): void {
  program
    .command('delete')
    .description('delete objects by kind and name, by label, or from manifest files')
    .argument('[kind]', 'kind: pod, svc, deploy, ...')
    .argument('[names...]', 'object names')
    .option('-f, --filename <file...>', 'delete the objects named in these manifests')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-l, --selector <selector>', 'delete every object matching this label selector')
    .option('--all', 'delete every object of the kind in the namespace')
    .option('-A, --all-namespaces', 'with --all or -l: in every namespace')
    .option('--grace-period <seconds>', 'seconds pods get to stop (0: at once)')
    .option('--now', 'same as --grace-period=1')
    .option('--ignore-not-found', 'no error when an object does not exist')
    .option('--wait <bool>', 'wait until the objects are gone', (v) => v !== 'false', true)
    .option(
      '--timeout <duration>',
      'how long --wait waits (e.g. 60s; a bare number is seconds)',
      '60s',
    )
    .action(async (kind: string | undefined, names: string[], opts: DeleteOpts, cmd: Command) => {
      const { client, context } = connect((cmd.optsWithGlobals() as { context?: string }).context);
      try {
        const namespace = opts.namespace ?? context.namespace;
        const targets: Array<{ info: ResourceInfo; name: string; namespace?: string }> = [];
        if (opts.filename) {
          if (kind)
            throw new TendrilError('CLI_BAD_ARGS', 'give either -f FILE or KIND NAME, not both', {
              hint: 'tendril delete -f echo.yaml',
            });
          for (const m of readManifests(opts.filename)) {
            targets.push({
              info: m.info,
              name: m.object.metadata.name!,
              namespace: m.info.namespaced ? (m.object.metadata.namespace ?? namespace) : undefined,
            });
          }
        } else {
          if (!kind)
            throw new TendrilError(
              'CLI_BAD_ARGS',
              'you must provide one or more resources by argument or filename',
              { hint: 'tendril delete pod NAME, or tendril delete -f FILE' },
            );
          const info = resolveResourceName(kind);
          const ns = info.namespaced ? namespace : undefined;
          if (opts.all && opts.selector)
            throw new TendrilError(
              'CLI_BAD_ARGS',
              "setting 'all' parameter but found a non empty selector. ",
              { hint: 'give either --all or -l' },
            );
          if (opts.allNamespaces && names.length)
            throw new TendrilError(
              'CLI_BAD_ARGS',
              'a resource cannot be retrieved by name across all namespaces',
              { hint: 'drop -A, or use --all / -l' },
            );
          if (opts.selector || opts.all) {
            if (names.length)
              throw new TendrilError(
                'CLI_BAD_ARGS',
                'name cannot be provided when a selector is specified',
                { hint: `drop the names or the ${opts.all ? '--all' : '-l'}` },
              );
            const list = await client.list(apiVersionOf(info), info.kind, {
              namespace: opts.allNamespaces ? undefined : ns,
              labelSelector: opts.selector,
            });
            for (const o of list.items)
              targets.push({ info, name: o.metadata.name!, namespace: o.metadata.namespace });
            // kubectl prints this on stdout
            if (list.items.length === 0) process.stdout.write(`No resources found\n`);
          } else {
            if (names.length === 0)
              throw new TendrilError(
                'CLI_BAD_ARGS',
                `resource(s) were provided, but no name was specified`,
                { hint: `tendril delete ${kind} NAME` },
              );
            for (const n of names) targets.push({ info, name: n, namespace: ns });
          }
        }
        const grace = opts.now
          ? 1
          : opts.gracePeriod !== undefined
            ? Number(opts.gracePeriod)
            : undefined;
        let failed = false;
        const deleted: Array<{
          info: ResourceInfo;
          name: string;
          namespace?: string;
          uid?: string;
        }> = [];
        for (const t of targets) {
          try {
            const gone = await client.delete(apiVersionOf(t.info), t.info.kind, t.name, {
              namespace: t.namespace,
              ...(grace !== undefined && grace >= 0 ? { gracePeriodSeconds: grace } : {}),
            });
            process.stdout.write(`${kindDotGroup(t.info)} "${t.name}" deleted\n`);
            deleted.push({ ...t, uid: gone.metadata?.uid });
          } catch (err) {
            if (isNotFound(err) && opts.ignoreNotFound) continue;
            if (!(err instanceof ApiError)) throw err;
            process.stderr.write(`Error from server (${err.reason}): ${err.message}\n`);
            failed = true;
          }
        }
        if (opts.wait && deleted.length)
          await waitGone(client, deleted, parseDuration(opts.timeout, { what: '--timeout' }));
        if (failed) throw new ExitError(1);
      } finally {
        client.close();
      }
    });
}
