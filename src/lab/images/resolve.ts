/**
 * Images without a registry: maps a container's image, command and args to
 * the argv the lab runs. `mendhak/http-https-echo` runs the built-in echo
 * server; `curlimages/curl` runs the machine's /usr/bin/curl (with that
 * image's entrypoint rule: arguments that start with "-" or name no program
 * go to curl); `busybox` runs /usr/bin/busybox applets (default `sh`),
 * except `nc`, `wget` and `nslookup`, which run Tendril's own (NODE_APPLETS:
 * Debian's busybox nc lacks -v/-z, its wget segfaults with -T, its nslookup
 * exits 1 on a found name); a command the image lacks exits 127 naming the
 * applet. Any other image runs the container's command/args as given.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../../util/errors.js';
import { nodeCommand } from '../daemons.js';

/** The container fields that decide what runs. */
export interface ContainerImageSpec {
  image: string;
  command?: string[];
  args?: string[];
}

/** What to run for a container. */
export interface ResolvedImage {
  /** The image's repository without registry and tag (e.g. "curlimages/curl"). */
  repository: string;
  argv: string[];
  /** Environment the image itself sets. */
  env: Record<string, string>;
  /** The image has busybox applets on its PATH (busybox, and the Alpine-based curl image). */
  busyboxPath: boolean;
}

/**
 * The busybox image's applets Tendril provides itself (src/lab/images/applets/,
 * run with Node), because the machine's Debian busybox lacks or breaks them.
 */
export const NODE_APPLETS = ['nc', 'wget', 'nslookup'] as const;

/** The Node applets' entry point, relative to the repository root. */
const APPLETS_MAIN = 'src/lab/images/applets/main.ts';

/** Marker of a finished bin directory; its name changes when the layout does. */
const BIN_COMPLETE = '.complete-2';

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Makes `dir` a directory of busybox applet links (sh, httpd, ... ->
 * /usr/bin/busybox) plus scripts for NODE_APPLETS, as the busybox image's
 * /bin is, and returns it. Idempotent; safe when several kubelets do it at once.
 */
export function ensureBusyboxBin(dir: string): string {
  if (existsSync(join(dir, BIN_COMPLETE))) return dir;
  mkdirSync(dir, { recursive: true });
  for (const a of busyboxApplets()) {
    if (!/^[\w.[-]+$/.test(a) || (NODE_APPLETS as readonly string[]).includes(a)) continue;
    try {
      symlinkSync(BUSYBOX_PATH, join(dir, a));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  for (const a of NODE_APPLETS) {
    const script = `#!/bin/sh\nexec ${nodeCommand(APPLETS_MAIN, [a]).map(shellQuote).join(' ')} "$@"\n`;
    const tmp = join(dir, `.${a}.${process.pid}`);
    writeFileSync(tmp, script, { mode: 0o755 });
    renameSync(tmp, join(dir, a)); // replaces an older link atomically
  }
  writeFileSync(join(dir, BIN_COMPLETE), '');
  return dir;
}

/** Images the lab knows. */
export const KNOWN_IMAGES = ['mendhak/http-https-echo', 'curlimages/curl', 'busybox'] as const;

export const CURL_PATH = '/usr/bin/curl';
export const BUSYBOX_PATH = '/usr/bin/busybox';

/** Splits "docker.io/library/busybox:1.36@sha256:..." into its repository ("busybox") and tag. */
export function parseImageRef(image: string): { repository: string; tag: string } {
  let ref = image.trim();
  const at = ref.indexOf('@');
  if (at >= 0) ref = ref.slice(0, at);
  let tag = 'latest';
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) {
    tag = ref.slice(colon + 1);
    ref = ref.slice(0, colon);
  }
  const parts = ref.split('/');
  // a first component with a dot or colon, or "localhost", is a registry
  if (parts.length > 1 && (/[.:]/.test(parts[0]!) || parts[0] === 'localhost')) parts.shift();
  if (parts[0] === 'library' && parts.length === 2) parts.shift();
  return { repository: parts.join('/').toLowerCase(), tag };
}

/** Error for a container the lab cannot run. */
export class ImageError extends TendrilError {}

/**
 * Resolves what to run. Throws ImageError (code LAB_IMAGE_NO_COMMAND) for an
 * unknown image without command or args.
 */
export function resolveImage(c: ContainerImageSpec): ResolvedImage {
  const { repository } = parseImageRef(c.image);
  const command = c.command ?? [];
  const args = c.args ?? [];
  const env: Record<string, string> = {};
  switch (repository) {
    case 'mendhak/http-https-echo': {
      if (command.length > 0)
        return { repository, argv: [...command, ...args], env, busyboxPath: false };
      return {
        repository,
        argv: nodeCommand('src/lab/images/echo-server.ts'),
        env: { HTTP_PORT: '8080', HTTPS_PORT: '8443' },
        busyboxPath: false,
      };
    }
    case 'curlimages/curl': {
      if (command.length > 0)
        return { repository, argv: mapCurl([...command, ...args]), env, busyboxPath: true };
      const a = args.length > 0 ? args : ['curl'];
      // the image's entrypoint: prepend curl when the first word is an option or no program
      if (a[0]!.startsWith('-') || !programExists(a[0]!))
        return { repository, argv: [CURL_PATH, ...a], env, busyboxPath: true };
      return { repository, argv: mapCurl(a), env, busyboxPath: true };
    }
    case 'busybox': {
      const a = command.length > 0 ? [...command, ...args] : args.length > 0 ? args : ['sh'];
      return { repository, argv: mapBusybox(a), env, busyboxPath: true };
    }
    default: {
      const a = [...command, ...args];
      if (a.length === 0) {
        throw new ImageError(
          'LAB_IMAGE_NO_COMMAND',
          `image "${c.image}" is not available in the lab (there is no registry) and the container gives no command`,
          {
            hint: `give the container a command (it runs on this machine), or use one of the built-in images: ${KNOWN_IMAGES.join(', ')}`,
          },
        );
      }
      return { repository, argv: a, env, busyboxPath: false };
    }
  }
}

function programExists(name: string): boolean {
  if (name.includes('/')) return existsSync(name);
  if (name !== 'busybox' && existsSync(BUSYBOX_PATH) && busyboxApplets().has(name)) return true;
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .some((d) => existsSync(`${d}/${name}`));
}

function mapCurl(argv: string[]): string[] {
  const [cmd, ...rest] = argv;
  if (cmd === 'curl' || cmd === '/usr/bin/curl' || cmd === '/usr/local/bin/curl')
    return [CURL_PATH, ...rest];
  return argv;
}

/** The message (and exit status 127) of a command the busybox image does not have. */
export function missingAppletMessage(name: string): string {
  return `busybox image: applet '${name}' is not available in the lab (available: ${[
    ...new Set([...busyboxApplets(), ...NODE_APPLETS]),
  ]
    .sort()
    .join(', ')})`;
}

function mapBusybox(argv: string[]): string[] {
  const [cmd, ...rest] = argv;
  const base = cmd!.split('/').pop()!;
  if (base === 'busybox') {
    // `busybox nc ...` runs the applet as `nc ...` does; `busybox` alone lists them
    if (rest.length === 0 || rest[0]!.startsWith('-')) return [BUSYBOX_PATH, ...rest];
    return mapBusybox(rest);
  }
  if ((NODE_APPLETS as readonly string[]).includes(base))
    return nodeCommand(APPLETS_MAIN, [base, ...rest]);
  if (!busyboxApplets().has(base))
    // as a shell answers a missing command: a message on stderr, exit status 127
    return [BUSYBOX_PATH, 'sh', '-c', 'echo "$0" >&2; exit 127', missingAppletMessage(base)];
  // /bin/sh, sh, httpd, ... are busybox applets in that image
  return [BUSYBOX_PATH, base, ...rest];
}

let applets: Set<string> | undefined;
function busyboxApplets(): Set<string> {
  applets ??= new Set(
    execFileSync(BUSYBOX_PATH, ['--list']).toString().split('\n').filter(Boolean),
  );
  return applets;
}
