/**
 * On-demand CPU profiles of a mesh-scale child process (MESH_SCALE_PROFILE_DIR):
 * the orchestrator sends `profile-start` before the churn and `profile-stop`
 * after it; the child writes <dir>/<name>-<pid>.cpuprofile (open it in
 * Chrome DevTools or speedscope). node:inspector in the process itself, so
 * only the churn is sampled, not the full sync before it.
 */
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

let session: Session | undefined;

/** Starts sampling this process's CPU (idempotent). */
export async function startProfile(): Promise<void> {
  if (session) return;
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
}

/** Stops sampling and writes the profile into `dir`; returns its path. */
export async function stopProfile(dir: string, name: string): Promise<string> {
  if (!session) throw new Error('no profile started');
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  session = undefined;
  const file = join(dir, `${name}-${process.pid}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  return file;
}
