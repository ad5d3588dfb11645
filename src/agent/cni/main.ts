/**
 * The tendril-cni executable's entry point: reads the network config from
 * stdin, runs the CNI command from the environment, prints the result (or the
 * CNI error object) on stdout and exits 0 or 1, as the CNI spec requires.
 */
import { appendFileSync } from 'node:fs';
import { runPlugin } from './plugin.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const stdin = await readStdin();
const started = Date.now();
const { stdout, exitCode } = await runPlugin(process.env, stdin);
process.stdout.write(stdout);
try {
  const conf = JSON.parse(stdin) as { logFile?: string };
  if (conf.logFile) {
    appendFileSync(
      conf.logFile,
      `${new Date().toISOString()} ${process.env.CNI_COMMAND} ${process.env.CNI_CONTAINERID ?? ''} ${process.env.CNI_ARGS ?? ''} exit=${exitCode} ${Date.now() - started}ms ${exitCode ? stdout.trim() : ''}\n`,
    );
  }
} catch {
  // logging is best effort
}
process.exitCode = exitCode;
