/**
 * `tendril rollout status deployment/NAME [--timeout D] [--watch=false]` and
 * `tendril rollout restart deployment/NAME... | deploy [-l SEL]`, as
 * kubectl. status prints kubectl's progress lines (`Waiting for deployment
 * "echo" rollout to finish: 1 of 2 updated replicas are available...`) until
 * `deployment "echo" successfully rolled out` (exit 0), or `error: timed out
 * waiting for the condition` (exit 1). restart sets the pod template
 * annotation `kubectl.kubernetes.io/restartedAt`; the Deployment controller
 * rolls the pods because the template changed.
 */
import type { Command } from 'commander';
import type { KubeClient } from '../k8s/client.js';
import { connect } from '../k8s/connect.js';
import type { KubeObject } from '../k8s/objects.js';
import { apiVersionOf } from '../k8s/resources.js';
import { ExitError } from './main.js';
import {
  asKubectl,
  fetchTarget,
  objectRef,
  parseTimeoutMs,
  printError,
  selectTargets,
  UsageError,
  type Target,
} from './resource-args.js';

/** The template annotation `kubectl rollout restart` sets. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

/**
 * kubectl's deployment status viewer: the line to print and whether the
 * rollout is done. @throws UsageError when the progress deadline passed.
 */
export function deploymentRolloutStatus(d: KubeObject): { message: string; done: boolean } {
  const name = d.metadata.name;
  const st = d.status ?? {};
  if ((d.metadata.generation ?? 0) <= (st.observedGeneration ?? 0)) {
    const progressing = (st.conditions ?? []).find(
      (c: { type: string }) => c.type === 'Progressing',
    );
    if (progressing?.reason === 'ProgressDeadlineExceeded')
      throw new UsageError(`deployment "${name}" exceeded its progress deadline`);
    const want = d.spec?.replicas;
    const updated = st.updatedReplicas ?? 0;
    const replicas = st.replicas ?? 0;
    const available = st.availableReplicas ?? 0;
    if (want !== undefined && updated < want)
      return {
        message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${want} new replicas have been updated...`,
        done: false,
      };
    if (replicas > updated)
      return {
        message: `Waiting for deployment "${name}" rollout to finish: ${replicas - updated} old replicas are pending termination...`,
        done: false,
      };
    if (available < updated)
      return {
        message: `Waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available...`,
        done: false,
      };
    return { message: `deployment "${name}" successfully rolled out`, done: true };
  }
  return { message: 'Waiting for deployment spec update to be observed...', done: false };
}

async function status(
  client: KubeClient,
  t: Target,
  options: { timeoutMs: number; watch: boolean },
): Promise<void> {
  const deadline = options.timeoutMs > 0 ? Date.now() + options.timeoutMs : Infinity;
  let last = '';
  let obj = await fetchTarget(client, t);
  if (obj.kind !== 'Deployment')
    throw new UsageError(`no status viewer has been implemented for ${obj.kind}`);
  for (;;) {
    const s = deploymentRolloutStatus(obj);
    if (s.message !== last) process.stdout.write(`${s.message}\n`);
    last = s.message;
    if (s.done || !options.watch) return;
    if (Date.now() >= deadline) throw new UsageError('timed out waiting for the condition');
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
    obj = await client.get(apiVersionOf(t.info), t.info.kind, t.name, { namespace: t.namespace });
  }
}

interface CommonOpts {
  namespace?: string;
  selector?: string;
}

/** Registers `tendril rollout status|restart`. */
export function register(program: Command): void {
  const rollout = program
    .command('rollout')
    .description('watch or restart the rollout of a Deployment (kubectl rollout)');
  rollout
    .command('status')
    .description('wait until a Deployment has rolled out (kubectl rollout status)')
    .argument('[args...]', 'deployment/NAME, or deploy NAME')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-l, --selector <selector>', 'the Deployment matching this label selector')
    .option('--timeout <duration>', 'give up after this long (0: wait forever)', '0s')
    .option('-w, --watch <bool>', 'keep watching until done', (v) => v !== 'false', true)
    .action(
      async (
        args: string[],
        opts: CommonOpts & { timeout: string; watch: boolean },
        cmd: Command,
      ) => {
        await asKubectl(async () => {
          if (args.length === 0) throw new UsageError('required resource not specified');
          const timeoutMs = parseTimeoutMs(opts.timeout);
          const { client, context } = connect(
            (cmd.optsWithGlobals() as { context?: string }).context,
          );
          try {
            const targets = await selectTargets(client, args, {
              namespace: opts.namespace ?? context.namespace,
              selector: opts.selector,
              all: args.length === 1 && !args[0]!.includes('/') && !opts.selector,
            });
            if (targets.length !== 1)
              throw new UsageError(
                targets.length === 0
                  ? 'no resources found'
                  : `rollout status is only supported on individual resources and resource collections, but ${targets.length} resources were found`,
              );
            await status(client, targets[0]!, { timeoutMs, watch: opts.watch });
          } finally {
            client.close();
          }
        });
      },
    );
  rollout
    .command('restart')
    .description('restart the pods of Deployments, one rollout each (kubectl rollout restart)')
    .argument('[args...]', 'deployment/NAME..., deploy NAME..., or deploy (all)')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-l, --selector <selector>', 'every Deployment matching this label selector')
    .action(async (args: string[], opts: CommonOpts, cmd: Command) => {
      await asKubectl(async () => {
        if (args.length === 0) throw new UsageError('required resource not specified');
        const { client, context } = connect(
          (cmd.optsWithGlobals() as { context?: string }).context,
        );
        try {
          const targets = await selectTargets(client, args, {
            namespace: opts.namespace ?? context.namespace,
            selector: opts.selector,
            all: args.length === 1 && !args[0]!.includes('/') && !opts.selector,
          });
          let failed = false;
          for (const t of targets) {
            try {
              if (t.info.kind !== 'Deployment')
                throw new UsageError(`${t.info.plural} "${t.name}" restarting is not supported`);
              // kubectl's timestamp: RFC 3339 to the second.
              const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
              await client.patch(
                apiVersionOf(t.info),
                t.info.kind,
                t.name,
                { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: now } } } } },
                { namespace: t.namespace, type: 'strategic' },
              );
              process.stdout.write(`${objectRef(t)} restarted\n`);
            } catch (err) {
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
