/**
 * What kubectl's verbs share: reading `KIND NAME...`, `KIND/NAME...`,
 * `KIND -l SEL` and `KIND --all [-A]` into the objects to act on, and
 * printing failures in kubectl's words (`error: ...`, `Error from server
 * (NotFound): ...`, `The Deployment "x" is invalid: ...`) with exit status 1.
 */
import { parseDuration } from '../util/duration.js';
import type { KubeClient } from '../k8s/client.js';
import type { KubeObject } from '../k8s/objects.js';
import {
  apiVersionOf,
  kindDotGroup,
  resolveResourceName,
  type ResourceInfo,
} from '../k8s/resources.js';
import { ApiError } from '../k8s/status.js';
import { describeError, TendrilError } from '../util/errors.js';
import { ExitError } from './main.js';

/** One object a verb acts on. `object` is set when it came from a list. */
export interface Target {
  info: ResourceInfo;
  name: string;
  namespace?: string;
  object?: KubeObject;
}

/** How the resources were chosen, besides the positional arguments. */
export interface SelectOptions {
  /** The namespace of names given (the context's when -n is not given). */
  namespace: string;
  allNamespaces?: boolean;
  selector?: string;
  all?: boolean;
}

/** kubectl's message when no resource is given at all. */
export const NO_RESOURCES_MESSAGE = `You must provide one or more resources by argument or filename.
Example resource specifications include:
   '-f rsrc.yaml'
   '--filename=rsrc.json'
   '<resource> <name>'
   '<resource>'`;

/** A usage error of a kubectl-like verb: printed as `error: MESSAGE`, exit status 1. */
export class UsageError extends TendrilError {
  constructor(message: string) {
    super('CLI_USAGE', message);
  }
}

/** "deployment.apps/echo", as kubectl names an object in its output. */
export function objectRef(t: Pick<Target, 'info' | 'name'>): string {
  return `${kindDotGroup(t.info)}/${t.name}`;
}

/** "deployments/echo", as kubectl names an object in wait's timeout message. */
export function pluralRef(t: Pick<Target, 'info' | 'name'>): string {
  return `${t.info.plural}/${t.name}`;
}

/**
 * Resolves `KIND[,KIND] [NAME...]` or `KIND/NAME...` plus -l/--all/-A into
 * targets. Names are not looked up (verbs report a missing one per object);
 * selectors and --all list the objects.
 * @throws UsageError with kubectl's message for a bad combination;
 *   TendrilError `k8s.UnknownResource` for an unknown kind.
 */
export async function selectTargets(
  client: KubeClient,
  args: string[],
  options: SelectOptions,
): Promise<Target[]> {
  if (args.length === 0) throw new UsageError(NO_RESOURCES_MESSAGE);
  const slashed = args.filter((a) => a.includes('/'));
  const bySelector = options.selector !== undefined || options.all === true;
  if (options.all && options.selector)
    throw new UsageError("setting 'all' parameter but found a non empty selector. ");
  if (slashed.length > 0) {
    if (slashed.length !== args.length)
      throw new UsageError(
        "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'",
      );
    if (bySelector) throw new UsageError('name cannot be provided when a selector is specified');
    if (options.allNamespaces)
      throw new UsageError('a resource cannot be retrieved by name across all namespaces');
    return args.map((a) => {
      const i = a.indexOf('/');
      const info = resolveKind(a.slice(0, i));
      const name = a.slice(i + 1);
      if (!name)
        throw new UsageError(
          `arguments in resource/name form must have a single resource and name`,
        );
      return { info, name, namespace: info.namespaced ? options.namespace : undefined };
    });
  }
  const kinds = args[0]!.split(',').filter(Boolean).map(resolveKind);
  const names = args.slice(1);
  if (names.length > 0) {
    if (bySelector) throw new UsageError('name cannot be provided when a selector is specified');
    if (options.allNamespaces)
      throw new UsageError('a resource cannot be retrieved by name across all namespaces');
    return kinds.flatMap((info) =>
      names.map((name) => ({
        info,
        name,
        namespace: info.namespaced ? options.namespace : undefined,
      })),
    );
  }
  if (!bySelector) throw new UsageError('resource(s) were provided, but no name was specified');
  const out: Target[] = [];
  for (const info of kinds) {
    const list = await client.list(apiVersionOf(info), info.kind, {
      namespace: info.namespaced && !options.allNamespaces ? options.namespace : undefined,
      labelSelector: options.selector,
    });
    for (const o of list.items)
      out.push({ info, name: o.metadata.name!, namespace: o.metadata.namespace, object: o });
  }
  return out;
}

function resolveKind(word: string): ResourceInfo {
  try {
    return resolveResourceName(word);
  } catch (err) {
    if (err instanceof TendrilError) throw new UsageError(err.message);
    throw err;
  }
}

/** Fetches a target's object (a listed target keeps the object it came with). */
export async function fetchTarget(client: KubeClient, t: Target): Promise<KubeObject> {
  if (t.object) return t.object;
  return client.get(apiVersionOf(t.info), t.info.kind, t.name, { namespace: t.namespace });
}

/**
 * kubectl's text for an error: `Error from server (Reason): ...` for a server
 * Status, `The KIND "NAME" is invalid: FIELD: ...` for 422, `error: ...` otherwise.
 */
export function kubectlErrorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.reason === 'Invalid') {
      const d = err.status.details;
      if (!d) return `The request is invalid: ${err.message}`;
      let s = 'The request is invalid';
      if (d.kind || d.name) s = `The ${d.kind ?? ''} "${d.name ?? ''}" is invalid`;
      const causes = (d.causes ?? []).map((c) =>
        c.field ? `${c.field}: ${c.message}` : c.message,
      );
      if (causes.length === 0) return d.kind || d.name ? s : `${s}: ${err.message}`;
      if (causes.length === 1) return `${s}: ${causes[0]}`;
      return `${s}: \n${causes.map((c) => `* ${c}`).join('\n')}`;
    }
    return `Error from server (${err.reason}): ${err.message}`;
  }
  return `error: ${describeError(err)}`;
}

/** Prints an error as kubectl does, on stderr. */
export function printError(err: unknown): void {
  process.stderr.write(`${kubectlErrorText(err)}\n`);
}

/**
 * Runs a verb's body and turns usage errors and server errors into kubectl's
 * output and exit status 1 (other errors go to main's handler).
 */
export async function asKubectl(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (err instanceof ExitError) throw err;
    if (err instanceof UsageError || err instanceof ApiError) {
      printError(err);
      throw new ExitError(1);
    }
    throw err;
  }
}

/** Parses `--dry-run[=none|client|server]` as kubectl does. @throws UsageError. */
export function parseDryRun(v: string | boolean | undefined): 'none' | 'client' | 'server' {
  if (v === undefined || v === false || v === 'none') return 'none';
  if (v === true || v === 'client') return 'client';
  if (v === 'server') return 'server';
  throw new UsageError(
    `Invalid dry-run value (${String(v)}). Must be "none", "server", or "client".`,
  );
}

/** The suffix kubectl adds to a line for a dry run. */
export function dryRunSuffix(mode: 'none' | 'client' | 'server'): string {
  return mode === 'client' ? ' (dry run)' : mode === 'server' ? ' (server dry run)' : '';
}

/**
 * Parses a kubectl --timeout: a duration as every Tendril flag takes it
 * (`30s`, `1m30s`, `500ms`, parseDuration), or kubectl's bare seconds; a
 * negative value waits a week, as kubectl. @throws UsageError.
 */
export function parseTimeoutMs(text: string): number {
  const t = text.trim();
  if (t.startsWith('-')) return 7 * 24 * 3600_000;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  try {
    return parseDuration(t);
  } catch (err) {
    throw new UsageError(`${describeError(err)}`);
  }
}
