/**
 * `tendril config`: contexts in Tendril's kubeconfig-style config file.
 *   config get-contexts [NAME]      CURRENT NAME CLUSTER AUTHINFO NAMESPACE
 *   config use-context NAME
 *   config delete-context NAME
 *   config current-context
 *   config view [--minify] [-o yaml|json]
 *   config write-kubeconfig FILE [--context NAME...]   a standalone kubeconfig for kubectl
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import {
  currentContext,
  listContexts,
  readKubeConfig,
  removeContext,
  useContext,
  writeStandaloneKubeConfig,
} from '../k8s/kubeconfig.js';
import { renderTable } from '../k8s/printers.js';
import { TendrilError } from '../util/errors.js';
import { configPath } from '../util/paths.js';
import { ExitError } from './main.js';

/** Registers `tendril config`. */
export function register(program: Command): void {
  const config = program
    .command('config')
    .description("show and switch contexts in Tendril's config (kubeconfig format)");
  config
    .command('get-contexts [name]')
    .description('list contexts (the current one is marked *)')
    .option('-o, --output <format>', "'name' prints names only")
    .action((name: string | undefined, opts: { output?: string }) => {
      const all = listContexts();
      const rows = name ? all.filter((c) => c.name === name) : all;
      if (name && rows.length === 0) throw new ExitError(1, `context ${name} not found`);
      if (opts.output === 'name') {
        process.stdout.write(rows.map((c) => c.name).join('\n') + (rows.length ? '\n' : ''));
        return;
      }
      process.stdout.write(
        renderTable(
          ['CURRENT', 'NAME', 'CLUSTER', 'AUTHINFO', 'NAMESPACE'],
          rows.map((c) => [c.current ? '*' : '', c.name, c.cluster, c.user, c.namespace]),
        ),
      );
    });
  config
    .command('use-context <name>')
    .description('make a context current')
    .action((name: string) => {
      useContext(name);
      process.stdout.write(`Switched to context "${name}".\n`);
    });
  config
    .command('delete-context <name>')
    .description('remove a context (and its cluster and user entries when nothing else uses them)')
    .action((name: string) => {
      if (!listContexts().some((c) => c.name === name)) {
        throw new TendrilError(
          'CONFIG_UNKNOWN_CONTEXT',
          `cannot delete context ${name}, not in ${configPath()}`,
          {
            hint: `known contexts: ${
              listContexts()
                .map((c) => c.name)
                .join(', ') || '(none)'
            }`,
          },
        );
      }
      removeContext(name);
      process.stdout.write(`deleted context ${name} from ${configPath()}\n`);
    });
  config
    .command('current-context')
    .description('print the current context')
    .action(() => {
      const cur = currentContext();
      if (!cur)
        throw new TendrilError('CONFIG_NO_CONTEXT', 'current-context is not set', {
          hint: 'run `tendril config use-context NAME` or `tendril lab create NAME`',
        });
      process.stdout.write(cur + '\n');
    });
  config
    .command('view')
    .description(`print the config file (${'$TENDRIL_HOME/config'})`)
    .option('--minify', 'only the current context and what it uses')
    .option('-o, --output <format>', 'yaml (default) or json', 'yaml')
    .action((opts: { minify?: boolean; output: string }, cmd: Command) => {
      let doc = readKubeConfig();
      if (opts.minify) {
        const name =
          (cmd.optsWithGlobals() as { context?: string }).context ?? doc['current-context'];
        const ctx = doc.contexts.find((c) => c.name === name);
        if (!ctx)
          throw new TendrilError(
            'CONFIG_NO_CONTEXT',
            `cannot minify: context "${name ?? ''}" not found`,
            { hint: 'pass --context NAME' },
          );
        doc = {
          ...doc,
          'current-context': ctx.name,
          contexts: [ctx],
          clusters: doc.clusters.filter((c) => c.name === ctx.context.cluster),
          users: doc.users.filter((u) => u.name === ctx.context.user),
        };
      }
      process.stdout.write(
        opts.output === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc),
      );
    });
  config
    .command('write-kubeconfig <file>')
    .description('write a standalone kubeconfig for kubectl (`kubectl --kubeconfig FILE get pods`)')
    .option('--contexts <names>', 'comma-separated contexts to include (default: all)')
    .action((file: string, opts: { contexts?: string }, cmd: Command) => {
      const current = (cmd.optsWithGlobals() as { context?: string }).context;
      const contexts = opts.contexts?.split(',').filter(Boolean);
      writeStandaloneKubeConfig(file, { contexts, current });
      process.stdout.write(`wrote ${file} (from ${configPath()})\n`);
    });
}
