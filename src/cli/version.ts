/** `tendril version`: the CLI's version, Node's, and the kernel's. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';

export function register(program: Command): void {
  program
    .command('version')
    .description('print the versions of tendril, Node.js and the kernel')
    .action(() => {
      const pkg = JSON.parse(
        readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
      ) as { version: string };
      process.stdout.write(
        `tendril: v${pkg.version}\nnode: ${process.version}\nkernel-version: ${release()}\n`,
      );
    });
}
