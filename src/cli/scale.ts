/**
 * `tendril scale deployment/NAME|deploy NAME... | deploy -l SEL | deploy --all
 * --replicas=N [--current-replicas=M] [--resource-version RV]
 * [--dry-run=client|server] [-o name]`, as kubectl: writes the scale
 * subresource, prints `deployment.apps/echo scaled`; a failed precondition
 * is `error: Expected replicas to be M, was N`.
 */
import type { Command } from 'commander';
import { connect } from '../k8s/connect.js';
import { resourcePath } from '../k8s/resources.js';
import { ExitError } from './main.js';
import {
  asKubectl,
  dryRunSuffix,
  fetchTarget,
  NO_RESOURCES_MESSAGE,
  objectRef,
  parseDryRun,
  printError,
  selectTargets,
  UsageError,
} from './resource-args.js';

interface ScaleOpts {
  replicas?: string;
  currentReplicas?: string;
  resourceVersion?: string;
  namespace?: string;
  selector?: string;
  all?: boolean;
  dryRun?: string | boolean;
  output?: string;
}

function count(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  return /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
}

/** Registers `tendril scale`. */
export function register(program: Command): void {
  program
    .command('scale')
    .description('set the number of replicas of a Deployment (kubectl scale)')
    .argument('[args...]', 'deployment/NAME..., or deploy NAME...')
    .option('--replicas <n>', 'the new number of replicas (required)')
    .option('--current-replicas <n>', 'precondition: only scale if it has this many now')
    .option('--resource-version <rv>', 'precondition: only scale at this resourceVersion')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-l, --selector <selector>', 'every Deployment matching this label selector')
    .option('--all', 'every Deployment in the namespace')
    .option('--dry-run [mode]', 'client or server: show what would happen without writing')
    .option('-o, --output <format>', 'name: print only KIND/NAME')
    .action(async (args: string[], opts: ScaleOpts, cmd: Command) => {
      await asKubectl(async () => {
        const replicas = count(opts.replicas);
        if (replicas === undefined) throw new UsageError('required flag(s) "replicas" not set');
        if (!Number.isInteger(replicas) || replicas < 0)
          throw new UsageError(
            'The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0',
          );
        const current = count(opts.currentReplicas);
        if (current !== undefined && !Number.isInteger(current))
          throw new UsageError(
            `invalid --current-replicas "${opts.currentReplicas}": give a number`,
          );
        if (args.length === 0) throw new UsageError(NO_RESOURCES_MESSAGE);
        const dryRun = parseDryRun(opts.dryRun);
        const { client, context } = connect(
          (cmd.optsWithGlobals() as { context?: string }).context,
        );
        try {
          const targets = await selectTargets(client, args, {
            namespace: opts.namespace ?? context.namespace,
            selector: opts.selector,
            all: opts.all,
          });
          let failed = false;
          let scaled = 0;
          for (const t of targets) {
            try {
              if (!t.info.subresources.includes('scale'))
                throw new UsageError(
                  `cannot scale ${t.info.plural}: only Deployments have replicas here`,
                );
              const obj = await fetchTarget(client, t);
              const have = Number(obj.spec?.replicas ?? 1);
              if (current !== undefined && current !== -1 && have !== current)
                throw new UsageError(`Expected replicas to be ${current}, was ${have}`);
              if (opts.resourceVersion && obj.metadata.resourceVersion !== opts.resourceVersion)
                throw new UsageError(
                  `Expected resource version to be ${opts.resourceVersion}, was ${obj.metadata.resourceVersion}`,
                );
              if (dryRun !== 'client') {
                // The scale subresource, as kubectl: a merge patch of spec.replicas.
                const path =
                  resourcePath(t.info, {
                    namespace: t.namespace,
                    name: t.name,
                    subresource: 'scale',
                  }) + (dryRun === 'server' ? '?dryRun=All' : '');
                await client.request('PATCH', path, {
                  body: { spec: { replicas } },
                  contentType: 'application/merge-patch+json',
                });
              }
              scaled++;
              process.stdout.write(
                opts.output === 'name'
                  ? `${objectRef(t)}\n`
                  : `${objectRef(t)} scaled${dryRunSuffix(dryRun)}\n`,
              );
            } catch (err) {
              if (err instanceof UsageError && targets.length === 1) throw err;
              if (targets.length === 1 && scaled === 0 && isNotFound(err)) {
                process.stderr.write(`error: no objects passed to scale ${errMessage(err)}\n`);
                throw new ExitError(1);
              }
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

function isNotFound(err: unknown): boolean {
  return (err as { httpCode?: number }).httpCode === 404;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
