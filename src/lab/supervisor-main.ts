/**
 * Entry point of a lab cluster's supervisor process:
 *   node --import tsx src/lab/supervisor-main.ts --cluster NAME
 * Started detached by startSupervisor(); SIGTERM stops every daemon, then exits.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../util/log.js';
import { supervisorPidPath, writeSupervisorRecord } from './daemons.js';
import { Supervisor } from './supervisor.js';
import { DaemonReflector } from './daemon-reflector.js';

const { values } = parseArgs({ options: { cluster: { type: 'string' } } });
if (!values.cluster) {
  process.stderr.write('usage: supervisor-main.ts --cluster NAME\n');
  process.exit(2);
}
const cluster = values.cluster;
const log = createLogger({ subsys: 'lab-supervisor', cluster });
const sup = new Supervisor(cluster, log);
// Tendril's daemons as kube-system pods, written through the API server (src/lab/daemon-reflector.ts)
const reflector = new DaemonReflector(
  cluster,
  { daemons: () => sup.snapshot(), restart: (name) => sup.restartDaemon(name) },
  log.child({ subsys: 'reflector' }),
);
sup.onChange = () => reflector.kick();
let stopping = false;
const shutdown = async (sig: string) => {
  if (stopping) return;
  stopping = true;
  log.info('stopping daemons', { signal: sig });
  await reflector.stop();
  await sup.stop();
  rmSync(supervisorPidPath(cluster), { force: true });
  log.info('supervisor stopped');
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGHUP', () => {});
await sup.start();
writeSupervisorRecord(cluster);
reflector.start();
log.info('supervisor running', { pid: process.pid });
