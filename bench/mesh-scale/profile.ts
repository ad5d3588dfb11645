/**
 * On-demand CPU profiles of a mesh-scale child process (MESH_SCALE_PROFILE_DIR):
 * the orchestrator sends `profile-start` before the churn and `profile-stop`
 * after it; the child writes <dir>/<name>-<pid>.cpuprofile (open it in
 * Chrome DevTools or speedscope). node:inspector in the process itself, so
 * only the churn is sampled, not the full sync before it. Also the children's
 * event-loop delay over the churn (loopDelay).
 */
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
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

let loopHist: IntervalHistogram | undefined;
/** Starts measuring this process's event-loop delay, or stops and returns it (ms: p50, p99, max). */
export function loopDelay(on: boolean): { loopDelayMs?: [number, number, number] } {
  if (on) {
    loopHist = monitorEventLoopDelay({ resolution: 5 });
    loopHist.enable();
    return {};
  }
  if (!loopHist) return {};
  loopHist.disable();
  const h = loopHist;
  loopHist = undefined;
  return { loopDelayMs: [h.percentile(50) / 1e6, h.percentile(99) / 1e6, h.max / 1e6] };
}
