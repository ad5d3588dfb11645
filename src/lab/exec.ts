/**
 * Runs the system tools the lab drives (ip, nsenter, mount) and turns a
 * failure into a TendrilError carrying the command and its stderr.
 */
import { execFile } from 'node:child_process';
import { TendrilError } from '../util/errors.js';

/** Output of a finished command. */
export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd args...` and resolves with its output; throws LAB_COMMAND_FAILED
 * (message: what was being done, the command and its stderr) on a non-zero exit.
 */
export function run(
  cmd: string,
  args: string[],
  options: { input?: string; what?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const what = options.what ? `${options.what}: ` : '';
          reject(
            new TendrilError(
              'LAB_COMMAND_FAILED',
              `${what}\`${cmd} ${args.join(' ')}\` failed: ${String(stderr).trim() || err.message}`,
              {
                cause: err,
              },
            ),
          );
          return;
        }
        resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like run, but resolves false instead of throwing. */
export async function tryRun(
  cmd: string,
  args: string[],
  options: { input?: string } = {},
): Promise<boolean> {
  try {
    await run(cmd, args, options);
    return true;
  } catch {
    return false;
  }
}
