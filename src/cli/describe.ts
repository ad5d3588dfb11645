/**
 * `tendril [--context C] describe KIND [NAME...] [-n NS | -A] [-l SEL]`:
 * kubectl-style detail for pods and services, a generic view for other kinds.
 */
import type { Command } from 'commander';
import { connect } from '../k8s/connect.js';
import { describeGeneric, describePod, describeService } from '../k8s/describe.js';
import type { KubeObject } from '../k8s/objects.js';
import { apiVersionOf, resolveResourceName } from '../k8s/resources.js';
import { ApiError } from '../k8s/status.js';
import { ExitError } from './main.js';

/** Registers `tendril describe`. */
export function register(program: Command): void {
  program
    .command('describe')
    .description('show details of objects (pods and services in kubectl layout)')
    .argument('<kind>', 'kind: pod, svc, deploy, ...')
    .argument('[names...]', 'object names (default: all in the namespace)')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-A, --all-namespaces', 'across all namespaces')
    .option('-l, --selector <selector>', 'label selector')
    .action(
      async (
        kind: string,
        names: string[],
        opts: { namespace?: string; allNamespaces?: boolean; selector?: string },
        cmd: Command,
      ) => {
        const info = resolveResourceName(kind);
        const av = apiVersionOf(info);
        const { client, context } = connect(
          (cmd.optsWithGlobals() as { context?: string }).context,
        );
        try {
          const namespace = opts.namespace ?? context.namespace;
          let objects: KubeObject[] = [];
          let failed = false;
          if (names.length) {
            for (const n of names) {
              try {
                objects.push(await client.get(av, info.kind, n, { namespace }));
              } catch (err) {
                if (!(err instanceof ApiError)) throw err;
                process.stderr.write(`Error from server (${err.reason}): ${err.message}\n`);
                failed = true;
              }
            }
          } else {
            objects = (
              await client.list(av, info.kind, {
                namespace: opts.allNamespaces ? undefined : namespace,
                labelSelector: opts.selector,
              })
            ).items;
            if (objects.length === 0)
              process.stderr.write(`No resources found in ${namespace} namespace.\n`);
          }
          const texts: string[] = [];
          for (const o of objects) {
            if (info.kind === 'Pod') texts.push(describePod(o));
            else if (info.kind === 'Service') {
              const slices = (
                await client.list('discovery.k8s.io/v1', 'EndpointSlice', {
                  namespace: o.metadata.namespace,
                  labelSelector: `kubernetes.io/service-name=${o.metadata.name}`,
                })
              ).items;
              texts.push(describeService(o, slices));
            } else texts.push(describeGeneric(o));
          }
          process.stdout.write(texts.join('\n\n'));
          if (failed) throw new ExitError(1);
        } finally {
          client.close();
        }
      },
    );
}
