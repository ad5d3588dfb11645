/**
 * Errors raised by the eBPF library. Every failure of the bpf(2) syscall is a
 * BpfError naming the command, the errno and a hint; the verifier's rejection
 * is a VerifierError carrying its log; a missing kernel feature is a
 * NotSupportedError naming the feature and the kernel version.
 */
import { release } from 'node:os';
import { TendrilError } from '../../util/errors.js';

/** Linux errno numbers (x86_64) -> [name, description]. */
const ERRNO: Record<number, [string, string]> = {
  1: ['EPERM', 'Operation not permitted'],
  2: ['ENOENT', 'No such file or directory'],
  3: ['ESRCH', 'No such process'],
  4: ['EINTR', 'Interrupted system call'],
  5: ['EIO', 'Input/output error'],
  6: ['ENXIO', 'No such device or address'],
  7: ['E2BIG', 'Argument list too long'],
  9: ['EBADF', 'Bad file descriptor'],
  11: ['EAGAIN', 'Resource temporarily unavailable'],
  12: ['ENOMEM', 'Cannot allocate memory'],
  13: ['EACCES', 'Permission denied'],
  14: ['EFAULT', 'Bad address'],
  16: ['EBUSY', 'Device or resource busy'],
  17: ['EEXIST', 'File exists'],
  18: ['EXDEV', 'Invalid cross-device link'],
  19: ['ENODEV', 'No such device'],
  20: ['ENOTDIR', 'Not a directory'],
  21: ['EISDIR', 'Is a directory'],
  22: ['EINVAL', 'Invalid argument'],
  24: ['EMFILE', 'Too many open files'],
  28: ['ENOSPC', 'No space left on device'],
  30: ['EROFS', 'Read-only file system'],
  34: ['ERANGE', 'Numerical result out of range'],
  38: ['ENOSYS', 'Function not implemented'],
  39: ['ENOTEMPTY', 'Directory not empty'],
  40: ['ELOOP', 'Too many levels of symbolic links'],
  61: ['ENODATA', 'No data available'],
  75: ['EOVERFLOW', 'Value too large for defined data type'],
  95: ['EOPNOTSUPP', 'Operation not supported'],
  97: ['EAFNOSUPPORT', 'Address family not supported by protocol'],
  110: ['ETIMEDOUT', 'Connection timed out'],
  524: ['ENOTSUPP', 'Operation is not supported'],
};

/** The symbolic name of an errno ("EPERM"), or "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `E${errno}`;
}

/** The description of an errno ("Operation not permitted"). */
export function errnoDescription(errno: number): string {
  return ERRNO[errno]?.[1] ?? `errno ${errno}`;
}

/** The errno number for a name ("ENOENT" -> 2), or undefined. */
export function errnoNumber(name: string): number | undefined {
  for (const [n, [nm]] of Object.entries(ERRNO)) if (nm === name) return Number(n);
  return undefined;
}

/** Names of the bpf(2) commands, by number (enum bpf_cmd). */
export const BPF_COMMAND_NAMES: readonly string[] = [
  'BPF_MAP_CREATE',
  'BPF_MAP_LOOKUP_ELEM',
  'BPF_MAP_UPDATE_ELEM',
  'BPF_MAP_DELETE_ELEM',
  'BPF_MAP_GET_NEXT_KEY',
  'BPF_PROG_LOAD',
  'BPF_OBJ_PIN',
  'BPF_OBJ_GET',
  'BPF_PROG_ATTACH',
  'BPF_PROG_DETACH',
  'BPF_PROG_TEST_RUN',
  'BPF_PROG_GET_NEXT_ID',
  'BPF_MAP_GET_NEXT_ID',
  'BPF_PROG_GET_FD_BY_ID',
  'BPF_MAP_GET_FD_BY_ID',
  'BPF_OBJ_GET_INFO_BY_FD',
  'BPF_PROG_QUERY',
  'BPF_RAW_TRACEPOINT_OPEN',
  'BPF_BTF_LOAD',
  'BPF_BTF_GET_FD_BY_ID',
  'BPF_TASK_FD_QUERY',
  'BPF_MAP_LOOKUP_AND_DELETE_ELEM',
  'BPF_MAP_FREEZE',
  'BPF_BTF_GET_NEXT_ID',
  'BPF_MAP_LOOKUP_BATCH',
  'BPF_MAP_LOOKUP_AND_DELETE_BATCH',
  'BPF_MAP_UPDATE_BATCH',
  'BPF_MAP_DELETE_BATCH',
  'BPF_LINK_CREATE',
  'BPF_LINK_UPDATE',
  'BPF_LINK_GET_FD_BY_ID',
  'BPF_LINK_GET_NEXT_ID',
  'BPF_ENABLE_STATS',
  'BPF_ITER_CREATE',
  'BPF_LINK_DETACH',
  'BPF_PROG_BIND_MAP',
];

/** The name of a bpf(2) command number. */
export function commandName(cmd: number): string {
  return BPF_COMMAND_NAMES[cmd] ?? `BPF_CMD_${cmd}`;
}

/** A hint for the user, from the command and the errno. */
export function hintFor(cmd: number, errno: number): string | undefined {
  const c = commandName(cmd);
  switch (errnoName(errno)) {
    case 'EPERM':
      return 'bpf(2) needs root or CAP_BPF (plus CAP_NET_ADMIN / CAP_SYS_ADMIN for attach); run as root';
    case 'E2BIG':
      if (c.includes('UPDATE'))
        return 'the map is full (max_entries reached): delete entries or create the map with a larger maxEntries';
      if (c === 'BPF_PROG_LOAD')
        return 'the program is too large for the kernel (too many instructions or too complex)';
      return 'an argument is too large for this kernel';
    case 'ENOENT':
      if (c.includes('LOOKUP') || c.includes('DELETE') || c === 'BPF_MAP_GET_NEXT_KEY')
        return 'no such key in the map';
      if (c === 'BPF_OBJ_GET')
        return 'nothing is pinned at that path (is bpffs mounted at /sys/fs/bpf?)';
      return 'the object does not exist';
    case 'EEXIST':
      if (c === 'BPF_OBJ_PIN')
        return 'something is already pinned at that path: remove it or open the pinned object instead';
      if (c.includes('UPDATE')) return 'the key exists and the update used NOEXIST';
      return 'the object already exists';
    case 'EBADF':
      return 'a file descriptor is invalid or was already closed (use the object before close())';
    case 'EINVAL':
      if (c === 'BPF_MAP_CREATE')
        return 'the map spec is invalid for this map type (check key/value sizes, maxEntries and flags)';
      if (c === 'BPF_LINK_CREATE' || c === 'BPF_PROG_ATTACH')
        return 'the program type or expected attach type does not fit this attach point, or the kernel lacks this attach type';
      return 'an argument is invalid for this command or kernel';
    case 'ENOMEM':
      return 'the kernel could not allocate memory (check RLIMIT_MEMLOCK / memory cgroup limits, or use a smaller map)';
    case 'EACCES':
      if (c === 'BPF_PROG_LOAD') return 'the verifier rejected the program; see the verifier log';
      return 'access denied (read-only map or file permissions)';
    case 'ENOSPC':
      return 'a buffer was too small (verifier log) or the attach point is full';
    case 'EOPNOTSUPP':
    case 'ENOTSUPP':
      return 'this kernel does not support the operation for this object type';
    case 'ENODEV':
      return 'no such network interface in the namespace the call was made from';
    case 'EBUSY':
      return 'the attach point is busy (another program is already attached exclusively)';
    case 'EFAULT':
      return 'the kernel could not read a buffer passed to it (library bug: report it)';
    case 'ENOSYS':
      return 'this kernel has no bpf(2) syscall';
    default:
      return undefined;
  }
}

/** A failed bpf(2) call (or another syscall the library makes). */
export class BpfError extends TendrilError {
  /** The bpf command name, e.g. "BPF_MAP_UPDATE_ELEM" (or the syscall name, e.g. "setns"). */
  readonly command: string;
  readonly errno: number;
  readonly errnoName: string;

  constructor(
    command: string,
    errno: number,
    options: {
      context?: string;
      hint?: string;
      cause?: unknown;
      code?: string;
      message?: string;
    } = {},
  ) {
    const what = `${command}: ${errnoName(errno)} (${errnoDescription(errno)})`;
    const message = options.message ?? (options.context ? `${options.context}: ${what}` : what);
    super(options.code ?? 'BPF_SYSCALL', message, { hint: options.hint, cause: options.cause });
    this.name = 'BpfError';
    this.command = command;
    this.errno = errno;
    this.errnoName = errnoName(errno);
  }
}

/** Builds the BpfError for a failed bpf(2) command. */
export function bpfError(cmd: number, errno: number, context?: string): BpfError {
  return new BpfError(commandName(cmd), errno, { context, hint: hintFor(cmd, errno) });
}

/** The verifier rejected a program. `log` is the verifier's full log; `program` the formatted instructions. */
export class VerifierError extends BpfError {
  readonly log: string;
  readonly program: string;

  constructor(programName: string, errno: number, log: string, program: string) {
    const last = lastLogLines(log, 3);
    super('BPF_PROG_LOAD', errno, {
      code: 'BPF_VERIFIER',
      message: `load program "${programName}": the verifier rejected it: ${errnoName(errno)}${last ? `\n${last}` : ''}`,
      hint: 'read err.log (the full verifier log) against err.program (the instructions with their indexes)',
    });
    this.name = 'VerifierError';
    this.log = log;
    this.program = program;
  }
}

function lastLogLines(log: string, n: number): string {
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  return lines
    .slice(-n)
    .map((l) => `  ${l}`)
    .join('\n');
}

/** The running kernel's version string (uname -r). */
export function kernelVersion(): string {
  return release();
}

/** The kernel lacks a feature the caller asked for. */
export class NotSupportedError extends TendrilError {
  readonly feature: string;
  readonly kernel: string;

  constructor(feature: string, options: { hint?: string; cause?: unknown } = {}) {
    super('BPF_NOT_SUPPORTED', `${feature} is not supported by kernel ${kernelVersion()}`, {
      hint: options.hint ?? `use a kernel that supports ${feature}`,
      cause: options.cause,
    });
    this.name = 'NotSupportedError';
    this.feature = feature;
    this.kernel = kernelVersion();
  }
}

/** A pinned map exists but does not match the spec (type, sizes, flags). */
export class MapMismatchError extends TendrilError {
  readonly path: string;
  readonly differences: string[];

  constructor(path: string, differences: string[]) {
    super(
      'BPF_MAP_MISMATCH',
      `pinned map at ${path} does not match its spec: ${differences.join(', ')}`,
      {
        hint: `the map layout changed: remove the pin (rm ${path}) to recreate it, losing its contents, or fix the spec`,
      },
    );
    this.name = 'MapMismatchError';
    this.path = path;
    this.differences = differences;
  }
}

/** Bad assembler input (unknown or duplicate label, jump out of range, bad operand). */
export class AsmError extends TendrilError {
  constructor(message: string, hint?: string) {
    super('BPF_ASM', message, { hint });
    this.name = 'AsmError';
  }
}

/** A key or value does not fit its codec (wrong size, out-of-range number, bad address). */
export class CodecError extends TendrilError {
  constructor(message: string, hint?: string) {
    super('BPF_CODEC', message, { hint });
    this.name = 'CodecError';
  }
}

/** A map or program spec is invalid (caught before any syscall). */
export class SpecError extends TendrilError {
  constructor(message: string, hint?: string) {
    super('BPF_INVALID_SPEC', message, { hint });
    this.name = 'SpecError';
  }
}
