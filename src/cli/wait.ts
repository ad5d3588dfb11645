/**
 * `tendril wait --for=condition=X[=VALUE] | --for=delete | --for=create |
 * --for=jsonpath='{.a.b}'[=VALUE]  KIND NAME... | KIND/NAME... | KIND -l SEL
 * | KIND --all [-A] [--timeout=30s]`, as kubectl: each object gets the
 * timeout in turn; a met condition prints `pod/x condition met`; a timeout
 * prints `error: timed out waiting for the condition on pods/x` (one object)
 * and exits 1. Conditions match `status.conditions[].type` and `.status`
 * case-insensitively, and a condition with an older `observedGeneration`
 * than the object's `generation` does not count, as kubectl.
 */
import type { Command } from 'commander';
import type { KubeClient } from '../k8s/client.js';
import { connect } from '../k8s/connect.js';
import type { KubeObject } from '../k8s/objects.js';
import { apiVersionOf } from '../k8s/resources.js';
import { ApiError } from '../k8s/status.js';
import { ExitError } from './main.js';
import {
  asKubectl,
  NO_RESOURCES_MESSAGE,
  objectRef,
  parseTimeoutMs,
  pluralRef,
  selectTargets,
  UsageError,
  type Target,
} from './resource-args.js';

/** What `--for` asks. */
export type WaitFor =
  | { kind: 'delete' }
  | { kind: 'create' }
  | { kind: 'condition'; type: string; value: string }
  | { kind: 'jsonpath'; path: string[]; value?: string };

/** Parses `--for`. @throws UsageError as kubectl words it. */
export function parseWaitFor(text: string | undefined): WaitFor {
  const t = text ?? '';
  if (t.toLowerCase() === 'delete') return { kind: 'delete' };
  if (t.toLowerCase() === 'create') return { kind: 'create' };
  if (t.startsWith('condition=')) {
    const rest = t.slice('condition='.length);
    const eq = rest.indexOf('=');
    const type = eq < 0 ? rest : rest.slice(0, eq);
    const value = eq < 0 ? 'true' : rest.slice(eq + 1);
    if (!type) throw new UsageError(`unrecognized condition: "${t}"`);
    return { kind: 'condition', type, value };
  }
  if (t.startsWith('jsonpath=')) {
    const rest = t.slice('jsonpath='.length);
    const m = /^\{([^}]*)\}(?:=(.*))?$/.exec(rest) ?? /^([^=]*)(?:=(.*))?$/.exec(rest);
    const expr = (m?.[1] ?? '').trim();
    const path = parseFieldPath(expr);
    if (!path)
      throw new UsageError(
        `unsupported jsonpath "${rest}": the lab's wait takes a field path like '{.status.phase}'=Running or '{.spec.containers[0].name}'`,
      );
    return { kind: 'jsonpath', path, value: m?.[2] };
  }
  throw new UsageError(`unrecognized condition: "${t}"`);
}

/** `.a.b[0].c` -> ["a", "b", "0", "c"]; undefined for anything else (filters, wildcards). */
export function parseFieldPath(expr: string): string[] | undefined {
  if (!expr.startsWith('.')) return undefined;
  const out: string[] = [];
  const re = /\.([A-Za-z0-9_-]+)|\[(\d+)\]|\['([^']+)'\]/gy;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(expr))) {
    out.push(m[1] ?? m[2] ?? m[3]!);
    pos = re.lastIndex;
  }
  return pos === expr.length && out.length > 0 ? out : undefined;
}

function lookup(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** True when OBJ meets a condition or jsonpath wait. */
export function isMet(obj: KubeObject, f: WaitFor): boolean {
  if (f.kind === 'condition') {
    const conds = (obj.status?.conditions ?? []) as Array<{
      type?: string;
      status?: string;
      observedGeneration?: number;
    }>;
    return conds.some(
      (c) =>
        (c.type ?? '').toLowerCase() === f.type.toLowerCase() &&
        (c.status ?? '').toLowerCase() === f.value.toLowerCase() &&
        !(
          c.observedGeneration !== undefined &&
          obj.metadata.generation !== undefined &&
          c.observedGeneration < obj.metadata.generation
        ),
    );
  }
  if (f.kind === 'jsonpath') {
    const v = lookup(obj, f.path);
    if (f.value === undefined) return v !== undefined;
    if (v === undefined || (typeof v === 'object' && v !== null)) return false;
    return String(v) === f.value;
  }
  return true;
}

async function waitOne(
  client: KubeClient,
  t: Target,
  f: WaitFor,
  timeoutMs: number,
): Promise<'met' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  const uid = t.object?.metadata.uid;
  for (;;) {
    let obj: KubeObject | undefined;
    try {
      obj = await client.get(apiVersionOf(t.info), t.info.kind, t.name, {
        namespace: t.namespace,
      });
    } catch (err) {
      if (!(err instanceof ApiError && err.httpCode === 404)) throw err;
      if (f.kind === 'condition' || f.kind === 'jsonpath') {
        // A listed object that went away is an error; a named one never existed.
        throw err;
      }
    }
    if (f.kind === 'delete') {
      if (!obj || (uid && obj.metadata.uid !== uid)) return 'met';
    } else if (f.kind === 'create') {
      if (obj) return 'met';
    } else if (obj && isMet(obj, f)) return 'met';
    if (Date.now() >= deadline) return 'timeout';
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
  }
}

interface WaitOpts {
  for?: string;
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  all?: boolean;
  timeout: string;
}

/** Registers `tendril wait`. */
export function register(program: Command): void {
  program
    .command('wait')
    .description('wait until objects meet a condition, or are deleted (kubectl wait)')
    .argument('[args...]', 'KIND NAME..., KIND/NAME..., or KIND with -l / --all')
    .option(
      '--for <what>',
      "condition=Ready[=true], delete, create, or jsonpath='{.status.phase}'=Running",
    )
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('-A, --all-namespaces', 'with --all or -l: across all namespaces')
    .option('-l, --selector <selector>', 'every object matching this label selector')
    .option('--all', 'every object of the kind in the namespace')
    .option('--timeout <duration>', 'how long to wait for each object (0: check once)', '30s')
    .action(async (args: string[], opts: WaitOpts, cmd: Command) => {
      await asKubectl(async () => {
        const f = parseWaitFor(opts.for);
        const timeoutMs = parseTimeoutMs(opts.timeout);
        if (args.length === 0) throw new UsageError(NO_RESOURCES_MESSAGE);
        const { client, context } = connect(
          (cmd.optsWithGlobals() as { context?: string }).context,
        );
        try {
          const targets = await selectTargets(client, args, {
            namespace: opts.namespace ?? context.namespace,
            allNamespaces: opts.allNamespaces,
            selector: opts.selector,
            all: opts.all,
          });
          if (targets.length === 0) throw new UsageError('no matching resources found');
          const timedOut: Target[] = [];
          for (const t of targets) {
            if ((f.kind === 'condition' || f.kind === 'jsonpath') && !t.object) {
              // kubectl looks named objects up first: a missing one is NotFound at once.
              await client.get(apiVersionOf(t.info), t.info.kind, t.name, {
                namespace: t.namespace,
              });
            }
            if (f.kind === 'delete' && !t.object) {
              const exists = await client.getOrUndefined(
                apiVersionOf(t.info),
                t.info.kind,
                t.name,
                {
                  namespace: t.namespace,
                },
              );
              if (!exists) continue; // kubectl: nothing to wait for, nothing printed
            }
            const r = await waitOne(client, t, f, timeoutMs);
            if (r === 'met') process.stdout.write(`${objectRef(t)} condition met\n`);
            else timedOut.push(t);
          }
          if (timedOut.length === 1)
            throw new UsageError(
              `timed out waiting for the condition on ${pluralRef(timedOut[0]!)}`,
            );
          if (timedOut.length > 1) {
            process.stderr.write(
              timedOut
                .map((t) => `timed out waiting for the condition on ${pluralRef(t)}\n`)
                .join(''),
            );
            throw new ExitError(1);
          }
        } finally {
          client.close();
        }
      });
    });
}
