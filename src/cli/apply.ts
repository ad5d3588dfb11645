/**
 * `tendril [--context C] apply -f FILE|- [-n NS] [--dry-run]`: create or
 * update every object of a multi-document manifest, kubectl style
 * (`deployment.apps/echo created|configured|unchanged`). The whole file is
 * validated, then dry-run on the server, before anything is written.
 */
import type { Command } from 'commander';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { applyObjects } from '../k8s/apply.js';
import { connect } from '../k8s/connect.js';
import { parseManifest, type ManifestObject } from '../k8s/manifest.js';
import { kindDotGroup } from '../k8s/resources.js';
import { TendrilError } from '../util/errors.js';

/**
 * Reads and validates manifest files ("-" is stdin).
 * @throws ManifestError, TendrilError `CLI_READ_FILE`.
 */
export function readManifests(files: string[]): ManifestObject[] {
  const out: ManifestObject[] = [];
  const expanded = files.flatMap((f) => {
    // A directory means its .yaml/.yml/.json files, in name order (as kubectl -f DIR).
    if (f !== '-' && existsSync(f) && statSync(f).isDirectory()) {
      return readdirSync(f)
        .filter((n) => /\.(ya?ml|json)$/.test(n))
        .sort()
        .map((n) => join(f, n));
    }
    return [f];
  });
  for (const f of expanded) {
    let text: string;
    try {
      text = readFileSync(f === '-' ? 0 : f, 'utf8');
    } catch (err) {
      throw new TendrilError('CLI_READ_FILE', `read ${f}: ${(err as Error).message}`, {
        hint: 'check the path given to -f',
        cause: err,
      });
    }
    out.push(...parseManifest(text, f));
  }
  return out;
}

/** Registers `tendril apply`. */
export function register(program: Command): void {
  program
    .command('apply')
    .description('create or update objects from YAML manifests (kubectl apply)')
    .requiredOption('-f, --filename <file...>', 'manifest file(s), or - for stdin')
    .option('-n, --namespace <ns>', 'namespace for objects that name none')
    .option('--dry-run', 'validate on the server and print what would happen, without writing')
    .action(
      async (opts: { filename: string[]; namespace?: string; dryRun?: boolean }, cmd: Command) => {
        const objects = readManifests(opts.filename);
        if (objects.length === 0)
          throw new TendrilError(
            'CLI_NO_OBJECTS',
            `no objects passed to apply (${opts.filename.join(', ')})`,
            { hint: 'the file holds no YAML documents' },
          );
        const { client, context } = connect(
          (cmd.optsWithGlobals() as { context?: string }).context,
        );
        try {
          const results = await applyObjects(client, objects, {
            namespace: opts.namespace ?? context.namespace,
            dryRun: opts.dryRun,
          });
          for (const r of results)
            process.stdout.write(
              `${kindDotGroup(r.info)}/${r.name} ${r.action}${opts.dryRun ? ' (server dry run)' : ''}\n`,
            );
        } finally {
          client.close();
        }
      },
    );
}
