/**
 * Runs iproute2 (`ip`, `bridge`) and sysctl writes, in the calling process's
 * network namespace or, with `netns`, inside another one (a path such as
 * /run/netns/NAME or /proc/PID/ns/net, entered with nsenter so bpffs and
 * cgroup2 stay visible). Errors are IpCommandError naming the command and
 * carrying iproute2's message.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { TendrilError } from '../../util/errors.js';

/** A failed iproute2 command. */
export class IpCommandError extends TendrilError {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super('DATAPATH_IP_COMMAND', `${command}: ${stderr.trim() || `exit ${exitCode}`}`);
    this.name = 'IpCommandError';
  }

  /** True when iproute2 said the object already exists. */
  get exists(): boolean {
    return /File exists|already exists/i.test(this.stderr);
  }

  /** True when iproute2 said the object is not there. */
  get missing(): boolean {
    return /Cannot find device|No such|does not exist|not found|Cannot find/i.test(this.stderr);
  }
}

export interface RunOptions {
  /** Network namespace path to run in (default: the current one). */
  netns?: string;
  /** Text fed to stdin (for `-batch -`). */
  input?: string;
  /** Kill the command after this long (default 15 s). */
  timeoutMs?: number;
}

function run(bin: string, args: string[], options: RunOptions = {}): Promise<string> {
  const [file, argv] = options.netns
    ? ['nsenter', [`--net=${options.netns}`, bin, ...args]]
    : [bin, args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      argv,
      { encoding: 'utf8', timeout: options.timeoutMs ?? 15_000 },
      (err, stdout, stderr) => {
        if (err) {
          const code =
            typeof (err as { code?: unknown }).code === 'number'
              ? (err as { code: number }).code
              : null;
          reject(
            new IpCommandError(
              `${bin} ${args.join(' ')}${options.netns ? ` (in ${options.netns})` : ''}`,
              stderr || err.message,
              code,
            ),
          );
        } else resolve(stdout);
      },
    );
    if (options.input !== undefined) {
      // a command that ends before reading all its input (a batch stopped by a parse error,
      // or killed by the timeout) makes this write fail with EPIPE: its exit status and
      // stderr (handled above) say what happened, the write error adds nothing
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(options.input);
    }
  });
}

/** Runs `ip ARGS...`. @throws IpCommandError */
export function ip(args: string[], options: RunOptions = {}): Promise<string> {
  return run('ip', args, options);
}

/** Runs `ip -j ARGS...` and parses the JSON. @throws IpCommandError */
export async function ipJson<T = unknown>(args: string[], options: RunOptions = {}): Promise<T> {
  const out = await run('ip', ['-j', ...args], options);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** Runs several `ip` commands at once (`ip -batch -`); stops at the first failure. @throws IpCommandError */
export function ipBatch(
  commands: string[][],
  options: Omit<RunOptions, 'input'> = {},
): Promise<string> {
  if (commands.length === 0) return Promise.resolve('');
  return run('ip', ['-batch', '-'], {
    ...options,
    input: commands.map((c) => c.join(' ')).join('\n') + '\n',
  });
}

/** Lines of one `-force -batch -` run that failed: line index (0-based) -> iproute2's message. */
export type BatchFailures = Map<number, string>;

/** Lines per iproute2 process in batchLines (each process gets at most this many). */
export const BATCH_CHUNK_LINES = 1024;
/** A batch process is killed after this long (1,024 routes take well under a second when idle). */
const BATCH_TIMEOUT_MS = 120_000;

/**
 * Runs many `ip` (or `bridge`) command lines through as few processes as
 * possible (`BIN -force -batch -`, up to BATCH_CHUNK_LINES lines each): a
 * line the kernel refuses is reported ("Command failed -:N") and the rest
 * still run. A line iproute2 cannot parse ends its process early; then the
 * chunk is split in halves and each half run again (every caller's lines are
 * idempotent: replace, or delete where "missing" counts as done), until the
 * unparsable line stands alone and is reported. Resolves with the failed
 * lines; rejects only when the program cannot be started at all.
 * @throws IpCommandError (e.g. `ip` not installed, or the namespace is gone)
 */
export async function batchLines(
  bin: 'ip' | 'bridge',
  lines: string[],
  options: Omit<RunOptions, 'input'> = {},
): Promise<BatchFailures> {
  const failures: BatchFailures = new Map();
  for (let i = 0; i < lines.length; i += BATCH_CHUNK_LINES) {
    const part = await batchChunk(bin, lines.slice(i, i + BATCH_CHUNK_LINES), options);
    for (const [n, msg] of part) failures.set(i + n, msg);
  }
  return failures;
}

async function batchChunk(
  bin: 'ip' | 'bridge',
  lines: string[],
  options: Omit<RunOptions, 'input'>,
): Promise<BatchFailures> {
  const failures: BatchFailures = new Map();
  if (lines.length === 0) return failures;
  let stderr: string;
  try {
    await run(bin, ['-force', '-batch', '-'], {
      ...options,
      input: lines.join('\n') + '\n',
      timeoutMs: BATCH_TIMEOUT_MS,
    });
    return failures;
  } catch (err) {
    // not started, timed out, or the namespace could not be entered: nothing ran
    if (!(err instanceof IpCommandError) || err.exitCode === null || /^nsenter:/m.test(err.stderr))
      throw err;
    stderr = err.stderr;
  }
  // "<message lines>\nCommand failed -:N" per refused line; anything after the last
  // such line is a message that ended the process (a parse error).
  let msg: string[] = [];
  for (const l of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)\s*$/.exec(l);
    if (m) {
      failures.set(Number(m[1]) - 1, msg.join('; ') || 'failed');
      msg = [];
    } else if (l.trim()) msg.push(l.trim());
  }
  if (msg.length === 0 && failures.size > 0) return failures;
  // the process ended early (or failed without naming a line): isolate the culprit
  if (lines.length === 1) return new Map([[0, msg.join('; ') || stderr.trim() || 'failed']]);
  const half = Math.ceil(lines.length / 2);
  const out: BatchFailures = new Map();
  for (const [n, m] of await batchChunk(bin, lines.slice(0, half), options)) out.set(n, m);
  for (const [n, m] of await batchChunk(bin, lines.slice(half), options)) out.set(half + n, m);
  return out;
}

/** Runs `bridge ARGS...`. @throws IpCommandError */
export function bridge(args: string[], options: RunOptions = {}): Promise<string> {
  return run('bridge', args, options);
}

/** Like `ip`, but an "already exists" error counts as success. */
export async function ipIdempotentAdd(args: string[], options: RunOptions = {}): Promise<void> {
  try {
    await ip(args, options);
  } catch (err) {
    if (!(err instanceof IpCommandError && err.exists)) throw err;
  }
}

/** Like `ip`, but a "not found" error counts as success. */
export async function ipIdempotentDel(args: string[], options: RunOptions = {}): Promise<void> {
  try {
    await ip(args, options);
  } catch (err) {
    if (!(err instanceof IpCommandError && err.missing)) throw err;
  }
}

/**
 * Writes a sysctl (e.g. "net.ipv4.ip_forward", "1") in the current netns, or
 * in `netns` through `sysctl -w` under nsenter.
 */
export async function setSysctl(
  key: string,
  value: string,
  options: { netns?: string } = {},
): Promise<void> {
  if (!options.netns) {
    await writeFile(`/proc/sys/${key.replace(/\./g, '/')}`, value);
    return;
  }
  await run('sysctl', ['-q', '-w', `${key}=${value}`], { netns: options.netns });
}
