/**
 * `tendril patch KIND NAME | KIND/NAME -p PATCH | --patch-file FILE
 * [--type strategic|merge|json] [--subresource status|scale]
 * [--dry-run=client|server] [-o name|json|yaml]`, as kubectl: the patch is
 * JSON or YAML, the default type is strategic (lists merged by their merge
 * key), output `deployment.apps/echo patched` or `... patched (no change)`.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { connect } from '../k8s/connect.js';
import { applyJsonPatch, deepEqual, mergePatch, type JsonPatchOp } from '../k8s/mergepatch.js';
import { strategicMergePatch, supportsStrategicPatch } from '../k8s/strategicpatch.js';
import { apiVersionOf, resourcePath } from '../k8s/resources.js';
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

const TYPES = ['json', 'merge', 'strategic'] as const;
type PatchType = (typeof TYPES)[number];

interface PatchOpts {
  patch?: string;
  patchFile?: string;
  type: string;
  namespace?: string;
  subresource?: string;
  dryRun?: string | boolean;
  output?: string;
}

/** Reads a patch given as JSON or YAML. @throws UsageError naming the problem. */
export function parsePatchText(text: string, type: PatchType): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    try {
      value = parseYaml(text);
    } catch (err) {
      throw new UsageError(`unable to parse "${text}": ${(err as Error).message}`);
    }
  }
  if (type === 'json' && !Array.isArray(value))
    throw new UsageError(
      `unable to parse "${text}": a --type=json patch is a list of operations, e.g. [{"op":"replace","path":"/spec/replicas","value":2}]`,
    );
  return value;
}

/** Registers `tendril patch`. */
export function register(program: Command): void {
  program
    .command('patch')
    .description('change fields of an object with a strategic, merge or JSON patch (kubectl patch)')
    .argument('[args...]', 'KIND NAME, or KIND/NAME')
    .option('-p, --patch <patch>', 'the patch, JSON or YAML')
    .option('--patch-file <file>', 'a file holding the patch')
    .option('--type <type>', 'json, merge or strategic', 'strategic')
    .option('-n, --namespace <ns>', 'namespace (default: the context namespace)')
    .option('--subresource <name>', 'patch the status or scale subresource')
    .option('--dry-run [mode]', 'client or server: show what would happen without writing')
    .option('-o, --output <format>', 'name, json or yaml: print the patched object')
    .action(async (args: string[], opts: PatchOpts, cmd: Command) => {
      await asKubectl(async () => {
        if (!(TYPES as readonly string[]).includes(opts.type))
          throw new UsageError(`--type must be one of [json merge strategic], not "${opts.type}"`);
        const type = opts.type as PatchType;
        if (opts.output !== undefined && !['name', 'json', 'yaml'].includes(opts.output))
          throw new UsageError(
            `unable to match a printer suitable for the output format "${opts.output}", allowed formats are: json, name, yaml`,
          );
        if (opts.subresource !== undefined && !['status', 'scale'].includes(opts.subresource))
          throw new UsageError(
            `invalid subresource value: "${opts.subresource}". Must be one of [status scale]`,
          );
        const dryRun = parseDryRun(opts.dryRun);
        if (args.length === 0)
          throw new UsageError(
            `You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'`,
          );
        let text: string | undefined = opts.patch;
        if (opts.patchFile !== undefined) {
          if (text !== undefined)
            throw new UsageError('specify either --patch or --patch-file, not both');
          try {
            text = readFileSync(opts.patchFile, 'utf8');
          } catch (err) {
            throw new UsageError(`unable to read patch file: ${(err as Error).message}`);
          }
        }
        if (text === undefined || text.trim() === '')
          throw new UsageError(
            'must specify --patch or --patch-file containing the contents of the patch',
          );
        const patch = parsePatchText(text, type);
        const { client, context } = connect(
          (cmd.optsWithGlobals() as { context?: string }).context,
        );
        try {
          const targets = await selectTargets(client, args, {
            namespace: opts.namespace ?? context.namespace,
          });
          let failed = false;
          for (const t of targets) {
            try {
              const before = await fetchTarget(client, t);
              let after;
              if (dryRun === 'client') {
                after =
                  type === 'json'
                    ? applyJsonPatch(before, patch as JsonPatchOp[])
                    : type === 'strategic' && supportsStrategicPatch(t.info.kind)
                      ? strategicMergePatch(t.info.kind, before, patch)
                      : mergePatch(before, patch);
              } else if (opts.subresource === 'scale') {
                after = await client.request(
                  'PATCH',
                  resourcePath(t.info, {
                    namespace: t.namespace,
                    name: t.name,
                    subresource: 'scale',
                  }) + (dryRun === 'server' ? '?dryRun=All' : ''),
                  { body: patch, contentType: contentType(type) },
                );
              } else {
                after = await client.patch(apiVersionOf(t.info), t.info.kind, t.name, patch, {
                  namespace: t.namespace,
                  type,
                  subresource: opts.subresource as 'status' | undefined,
                  dryRun: dryRun === 'server',
                });
              }
              const ref =
                opts.subresource === 'scale' ? `scale.autoscaling/${t.name}` : objectRef(t);
              const changed =
                opts.subresource === 'scale'
                  ? (after as { spec?: { replicas?: number } }).spec?.replicas !==
                    (before.spec?.replicas ?? 1)
                  : !deepEqual(withoutVersion(before), withoutVersion(after));
              if (opts.output === 'name') process.stdout.write(`${ref}\n`);
              else if (opts.output === 'json')
                process.stdout.write(`${JSON.stringify(after, null, 4)}\n`);
              else if (opts.output === 'yaml') process.stdout.write(toYaml(after));
              else
                process.stdout.write(
                  `${ref} patched${changed ? dryRunSuffix(dryRun) : ' (no change)'}\n`,
                );
            } catch (err) {
              if (err instanceof UsageError) throw err;
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

function contentType(type: PatchType): string {
  return type === 'json'
    ? 'application/json-patch+json'
    : type === 'merge'
      ? 'application/merge-patch+json'
      : 'application/strategic-merge-patch+json';
}

function withoutVersion(o: unknown): unknown {
  if (typeof o !== 'object' || o === null) return o;
  const x = o as { metadata?: Record<string, unknown> };
  return {
    ...x,
    metadata: { ...(x.metadata ?? {}), resourceVersion: undefined, managedFields: undefined },
  };
}
