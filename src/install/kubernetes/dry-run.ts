/**
 * `tendril install --dry-run`: the install's objects for a real cluster,
 * rendered from the CLI's flags without touching any cluster.
 */
import { TendrilError } from '../../util/errors.js';
import { resolveManifestOptions, type ManifestInput } from './options.js';
import { formatManifests, renderManifests, type ManifestFormat } from './render.js';

/** The install flags a dry run reads. */
export interface DryRunOptions extends ManifestInput {
  /** yaml (default) or json. */
  output?: string;
  /** False when only -o was given: refused, since an install without --dry-run prints no objects. */
  dryRun?: boolean;
}

/**
 * Renders the install as text (multi-document YAML or a JSON List).
 * @throws TendrilError MANIFEST_INVALID_OPTION for -o without --dry-run, an unknown output format or a bad option.
 */
export function dryRunInstall(o: DryRunOptions): string {
  if (o.dryRun === false)
    throw new TendrilError('MANIFEST_INVALID_OPTION', `-o ${o.output} is only for --dry-run`, {
      hint: 'add --dry-run to print the objects instead of installing',
    });
  const format = (o.output ?? 'yaml').toLowerCase();
  if (format !== 'yaml' && format !== 'json')
    throw new TendrilError('MANIFEST_INVALID_OPTION', `unknown output format "${o.output}"`, {
      hint: 'use -o yaml or -o json',
    });
  return formatManifests(renderManifests(resolveManifestOptions(o)), format as ManifestFormat);
}
