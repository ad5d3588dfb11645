/**
 * Entry point of the busybox image's Node applets: `main.ts APPLET ARGS...`
 * runs nc, wget or nslookup (see NODE_APPLETS in ../resolve.ts) on the
 * process's standard streams and exits with the applet's status.
 */
import { nc, type AppletIO } from './nc.js';
import { nslookup } from './nslookup.js';
import { wget } from './wget.js';

/** The applets written here, by name. */
const APPLETS: Record<string, (args: string[], io: AppletIO) => Promise<number>> = {
  nc,
  wget,
  nslookup,
};

const [applet, ...args] = process.argv.slice(2);
const run = applet ? APPLETS[applet] : undefined;
if (!run) {
  process.stderr.write(
    `busybox applets: unknown applet '${applet ?? ''}' (${Object.keys(APPLETS).join(', ')})\n`,
  );
  process.exit(127);
}
const code = await run(args, {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
// Let stdout drain before exiting (a pipe may still hold the answer).
process.stdout.write('', () => process.exit(code));
