/**
 * Terminals for `kubectl exec -t`: the exec plan runs under util-linux
 * `script`, which allocates a pseudo-terminal for it (stdin and stdout stay
 * pipes on our side, carried by the remote-command channels) and returns
 * the command's exit code (`-e`). The terminal's size comes from the resize
 * channel: the first size is set (`stty`) before the command starts, later
 * ones with one TIOCSWINSZ ioctl on /dev/pts/N (which sends SIGWINCH to the
 * terminal's foreground job; `stty -F` would set rows and columns in two
 * steps, and the job would see a size nobody asked for).
 */
import { closeSync, constants, openSync, readFileSync, readlinkSync } from 'node:fs';
import koffi from 'koffi';
import { sysBin } from '../kubelet/runtime.js';

/** A terminal size as the resize channel carries it (kubectl's TerminalSize: Width, Height). */
export interface TermSize {
  rows: number;
  cols: number;
}

/** `s` as one word of a POSIX shell command (single-quoted). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The sizes in resize-channel text: JSON objects `{"Width":W,"Height":H}`,
 * one per line or message. Sizes that are not positive integers up to 65535
 * are left out (a terminal cannot have them).
 */
export function parseResize(text: string): TermSize[] {
  const out: TermSize[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    const o = v as { Width?: unknown; Height?: unknown };
    const ok = (n: unknown): n is number =>
      typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 65535;
    if (v && typeof v === 'object' && ok(o.Width) && ok(o.Height))
      out.push({ rows: o.Height, cols: o.Width });
  }
  return out;
}

/**
 * The argv and environment that run `plan` in a new pseudo-terminal of
 * `size` (if known): `script -q -e -f -c 'stty rows R cols C; exec ARGV...' /dev/null`.
 */
export function ttyPlan(
  plan: { argv: string[]; env: Record<string, string> },
  size?: TermSize,
): { argv: string[]; env: Record<string, string> } {
  const set = size ? `${sysBin('stty')} rows ${size.rows} cols ${size.cols} 2>/dev/null; ` : '';
  const cmd = `${set}exec ${plan.argv.map(shellQuote).join(' ')}`;
  return {
    argv: [sysBin('script'), '-q', '-e', '-f', '-c', cmd, '/dev/null'],
    env: { ...plan.env, SHELL: '/bin/sh' },
  };
}

/**
 * Resizes the terminal of a session started by {@link ttyPlan}: finds the
 * pseudo-terminal through `script`'s child (its fd 0 is /dev/pts/N) and sets
 * the size with TIOCSWINSZ. Sizes asked for while one is being applied
 * collapse into the latest; errors (the session ended) are dropped.
 */
export class PtyResizer {
  private pts: string | undefined;
  private busy = false;
  private next: TermSize | undefined;

  /** `scriptPid`: the pid of the `script` process. */
  constructor(private readonly scriptPid: number) {}

  /** The session's /dev/pts/N, once `script` has started its child. */
  ptsPath(): string | undefined {
    if (this.pts) return this.pts;
    try {
      const kids = readFileSync(
        `/proc/${this.scriptPid}/task/${this.scriptPid}/children`,
        'utf8',
      ).trim();
      for (const k of kids.split(/\s+/).filter(Boolean)) {
        const t = readlinkSync(`/proc/${k}/fd/0`);
        if (/^\/dev\/pts\/\d+$/.test(t)) return (this.pts = t);
      }
    } catch {
      // not there yet, or gone
    }
    return undefined;
  }

  /** Sets the terminal's size (retries for up to 2 s while the child starts). */
  resize(size: TermSize): Promise<void> {
    this.next = size;
    if (this.busy) return Promise.resolve();
    this.busy = true;
    return this.drain().finally(() => (this.busy = false));
  }

  private async drain(): Promise<void> {
    while (this.next) {
      const size = this.next;
      this.next = undefined;
      let pts = this.ptsPath();
      for (let i = 0; !pts && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
        pts = this.ptsPath();
      }
      if (!pts) return;
      setWinsize(pts, size);
    }
  }
}

/** TIOCSWINSZ (asm-generic ioctls: x86-64, arm64). */
const TIOCSWINSZ = 0x5414;
type Ioctl = (fd: number, req: number, ...args: unknown[]) => number;
let ioctlFn: Ioctl | undefined;

/** Sets the size of terminal `pts` in one ioctl; errors (the terminal is gone) are dropped. */
function setWinsize(pts: string, size: TermSize): void {
  ioctlFn ??= koffi.load('libc.so.6').func('int ioctl(int, unsigned long, ...)') as Ioctl;
  let fd: number;
  try {
    fd = openSync(pts, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch {
    return;
  }
  try {
    // struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; }
    const ws = Buffer.alloc(8);
    ws.writeUInt16LE(size.rows, 0);
    ws.writeUInt16LE(size.cols, 2);
    ioctlFn!(fd, TIOCSWINSZ, 'void *', ws);
  } finally {
    closeSync(fd);
  }
}
