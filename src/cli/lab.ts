/**
 * `tendril lab`: local clusters made of network namespaces.
 *   lab create NAME [--nodes N] [--pod-cidr CIDR] [--service-cidr CIDR] [--api-store memory|etcd] [--wait] [--no-kubeconfig]
 *   lab delete NAME... | --all [--no-kubeconfig]
 *
 * As kind does, `lab create` merges the context lab-NAME into the user's
 * kubeconfig ($KUBECONFIG's first file, else ~/.kube/config) and makes it
 * current, so real kubectl works at once; `lab delete` removes it again.
 *   lab list
 *   lab logs NAME [DAEMON] [-f]
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { clusterDir } from '../util/paths.js';
import { exportContext, unexportContext, userKubeconfigPath } from '../k8s/kubeconfig-export.js';
import { labContextName } from '../lab/context.js';
import { createCluster, restartCluster } from '../lab/create.js';
import {
  daemonLogPath,
  daemonStatus,
  logsDir,
  supervisorPid,
  type DaemonStatus,
} from '../lab/daemons.js';
import { followFile, readFrom } from '../lab/follow.js';
import { parseDuration } from '../util/duration.js';
import { netnsExists } from '../lab/netns.js';
import { clustersFromNetns, deleteAllClusters, deleteCluster } from '../lab/teardown.js';
import {
  labServerURL,
  listClusterDirs,
  listClusters,
  loadCluster,
  tryLoadCluster,
  type LabCluster,
} from '../lab/state.js';

const err = (line: string) => process.stderr.write(line + '\n');

/** Formats rows as a left-aligned table (kubectl style: 3 spaces between columns). */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('   ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function age(iso: string | undefined): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A cluster's health in a word, and the reasons when it is not OK. */
export function clusterHealth(
  c: LabCluster,
  daemons: DaemonStatus[],
  supervisor: number | undefined,
): { word: string; problems: string[] } {
  const problems: string[] = [];
  if (!supervisor) problems.push('supervisor not running');
  for (const d of daemons)
    if (!d.running)
      problems.push(
        `daemon ${d.name} ${d.finished ? 'exited' : 'not running'}${d.lastExit ? ` (last exit: code ${d.lastExit.code}, signal ${d.lastExit.signal})` : ''}`,
      );
  for (const n of c.nodes)
    if (!netnsExists(n.netns)) problems.push(`node ${n.name}: namespace ${n.netns} missing`);
  return { word: problems.length === 0 ? 'OK' : 'DEGRADED', problems };
}

function printList(): void {
  const clusters = listClusters();
  const halfMade = listClusterDirs().filter((d) => !clusters.some((c) => c.name === d));
  const orphans = clustersFromNetns().filter(
    (n) => !clusters.some((c) => c.name === n) && !halfMade.includes(n),
  );
  if (clusters.length === 0 && halfMade.length === 0 && orphans.length === 0) {
    process.stdout.write('No lab clusters. Create one with `tendril lab create NAME`.\n');
    return;
  }
  for (const c of clusters) {
    const daemons = daemonStatus(c.name);
    const sup = supervisorPid(c.name);
    const h = clusterHealth(c, daemons, sup);
    process.stdout.write(
      `CLUSTER ${c.name}   context lab-${c.name}   health ${h.word}   age ${age(c.createdAt)}\n` +
        `  pod CIDR ${c.podCIDR}   service CIDR ${c.serviceCIDR}   API ${labServerURL(c)} (store ${c.apiStore})   supervisor ${sup ? `pid ${sup}` : 'NOT RUNNING'}\n`,
    );
    const nodeRows = [['  NODE', 'ROLE', 'ADDRESS', 'POD CIDR', 'NETNS']];
    for (const n of c.nodes)
      nodeRows.push([
        `  ${n.name}`,
        n.role,
        n.ip,
        n.podCIDR,
        `${n.netns}${netnsExists(n.netns) ? '' : ' (MISSING)'}`,
      ]);
    process.stdout.write(table(nodeRows));
    const dRows = [['  DAEMON', 'STATUS', 'PID', 'RESTARTS', 'AGE', 'LAST EXIT']];
    for (const d of daemons) {
      dRows.push([
        `  ${d.name}`,
        d.running ? 'running' : d.finished ? 'EXITED' : 'DEAD',
        d.pid ? String(d.pid) : '-',
        String(d.restarts),
        d.running ? age(d.startedAt) : '-',
        d.lastExit
          ? `code ${d.lastExit.code ?? '-'} signal ${d.lastExit.signal ?? '-'} ${age(d.lastExit.at)} ago`
          : '-',
      ]);
    }
    process.stdout.write(table(dRows));
    for (const p of h.problems) process.stdout.write(`  ! ${p}\n`);
    process.stdout.write('\n');
  }
  for (const n of halfMade)
    process.stdout.write(
      `CLUSTER ${n}   health BROKEN (state directory without cluster.json): remove with \`tendril lab delete ${n}\`\n`,
    );
  for (const n of orphans)
    process.stdout.write(
      `CLUSTER ${n}   health BROKEN (namespaces without state): remove with \`tendril lab delete ${n}\`\n`,
    );
}

async function showLogs(name: string, daemon: string | undefined, follow: boolean): Promise<void> {
  if (!tryLoadCluster(name) && !existsSync(clusterDir(name))) loadCluster(name);
  const names = daemon ? [daemon] : ['supervisor', ...daemonStatus(name).map((d) => d.name)];
  const paths = names.map((d) =>
    d === 'supervisor' ? join(logsDir(name), 'supervisor.log') : daemonLogPath(name, d),
  );
  if (daemon && !existsSync(paths[0]!)) {
    throw new TendrilError(
      'LAB_NO_LOG',
      `lab cluster "${name}" has no log for daemon "${daemon}"`,
      {
        hint: `its daemons: supervisor, ${daemonStatus(name)
          .map((d) => d.name)
          .join(', ')}`,
      },
    );
  }
  if (!follow) {
    for (let i = 0; i < names.length; i++) {
      const r = readFrom(paths[i]!, 0);
      if (!daemon) process.stdout.write(`==> ${names[i]} (${paths[i]}) <==\n`);
      if (r) process.stdout.write(r.data);
      if (!daemon) process.stdout.write('\n');
    }
    return;
  }
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  await Promise.all(
    names.map((n, i) => {
      let partial = '';
      return followFile(
        paths[i]!,
        (data) => {
          if (daemon) {
            process.stdout.write(data);
            return;
          }
          const text = partial + data.toString();
          const lines = text.split('\n');
          partial = lines.pop()!;
          for (const l of lines) process.stdout.write(`[${n}] ${l}\n`);
        },
        { signal: ac.signal, intervalMs: 200 },
      );
    }),
  );
}

function parseIntFlag(v: string, flag: string): number {
  if (!/^\d+$/.test(v))
    throw new TendrilError('BAD_FLAG', `${flag} ${v} is not a number`, { hint: `e.g. ${flag} 2` });
  return Number(v);
}

/** Merges lab-NAME into the user's kubeconfig (as kind does), saying so on stderr. */
function exportLabContext(name: string): void {
  const ctx = labContextName(name);
  let file: string;
  try {
    file = exportContext(ctx);
  } catch (e) {
    throw new TendrilError(
      'LAB_KUBECONFIG',
      `lab cluster "${name}" is up, but adding context "${ctx}" to ${userKubeconfigPath()} failed: ${(e as Error).message}`,
      {
        hint: `fix the file and run \`tendril lab restart ${name}\`, or write a separate one: \`tendril config write-kubeconfig FILE --contexts ${ctx}\``,
        cause: e,
      },
    );
  }
  err(`Added context "${ctx}" to ${file} (now current): kubectl --context ${ctx} get pods`);
}

/** Removes lab-NAME from the user's kubeconfig, saying so when it was there. */
function unexportLabContext(name: string): void {
  const ctx = labContextName(name);
  if (unexportContext(ctx)) err(`Removed context "${ctx}" from ${userKubeconfigPath()}`);
}

/** Registers `tendril lab`. */
export function register(program: Command): void {
  const lab = program
    .command('lab')
    .description('local clusters made of network namespaces (like kind, without Docker)');

  lab
    .command('create')
    .description(
      'create a lab cluster: one control-plane node and N workers, an API server and kubelets',
    )
    .argument('<name>', 'cluster name (the context is lab-NAME)')
    .option('--nodes <n>', 'number of worker nodes', '2')
    .option(
      '--pod-cidr <cidr>',
      'pod CIDR of the cluster (default 10.<243+index>.0.0/16, distinct per cluster)',
    )
    .option('--service-cidr <cidr>', 'service CIDR (default 10.96.0.0/16)')
    .option('--api-store <store>', 'API server storage: memory (kept on disk) or etcd', 'memory')
    .option('--wait', 'wait until every node is Ready')
    .option(
      '--timeout <duration>',
      'timeout of each wait (e.g. 60s, 2m; a bare number is seconds)',
      '60s',
    )
    .option(
      '--no-kubeconfig',
      "do not add context lab-NAME to $KUBECONFIG (or ~/.kube/config); it stays in Tendril's config only",
    )
    .action(
      async (
        name: string,
        o: {
          nodes: string;
          podCidr?: string;
          serviceCidr?: string;
          apiStore: string;
          wait?: boolean;
          timeout: string;
          kubeconfig: boolean;
        },
      ) => {
        if (o.apiStore !== 'memory' && o.apiStore !== 'etcd') {
          throw new TendrilError('BAD_FLAG', `--api-store ${o.apiStore} is not a store`, {
            hint: 'use --api-store memory or --api-store etcd',
          });
        }
        await createCluster({
          name,
          nodes: parseIntFlag(o.nodes, '--nodes'),
          podCIDR: o.podCidr,
          serviceCIDR: o.serviceCidr,
          apiStore: o.apiStore,
          wait: Boolean(o.wait),
          timeoutMs: parseDuration(o.timeout, { what: '--timeout' }),
          progress: err,
        });
        if (o.kubeconfig) exportLabContext(name);
      },
    );

  lab
    .command('restart')
    .description(
      'bring a lab cluster back (supervisor and daemons; missing namespaces, e.g. after a reboot, are made again)',
    )
    .argument('<name>', 'cluster name')
    .option('--wait', 'wait until every node is Ready')
    .option(
      '--timeout <duration>',
      'timeout of each wait (e.g. 60s, 2m; a bare number is seconds)',
      '60s',
    )
    .option('--no-kubeconfig', 'do not update context lab-NAME in $KUBECONFIG (or ~/.kube/config)')
    .action(async (name: string, o: { wait?: boolean; timeout: string; kubeconfig: boolean }) => {
      await restartCluster(name, {
        wait: Boolean(o.wait),
        timeoutMs: parseDuration(o.timeout, { what: '--timeout' }),
        progress: err,
      });
      if (o.kubeconfig) exportLabContext(name);
    });

  lab
    .command('delete')
    .description(
      'delete lab clusters and everything they made (namespaces, links, cgroups, bpffs pins, processes, files, context)',
    )
    .argument('[names...]', 'cluster names')
    .option('--all', 'delete every lab cluster (and leftovers of this lab prefix)')
    .option('--no-kubeconfig', 'leave context lab-NAME in $KUBECONFIG (or ~/.kube/config)')
    .action(async (names: string[], o: { all?: boolean; kubeconfig: boolean }) => {
      if (o.all) {
        const known = [...new Set([...listClusters().map((c) => c.name), ...listClusterDirs()])];
        await deleteAllClusters({ progress: err });
        if (o.kubeconfig) for (const n of known) unexportLabContext(n);
        return;
      }
      if (names.length === 0)
        throw new TendrilError('BAD_FLAG', 'name the cluster to delete', {
          hint: 'tendril lab delete NAME, or tendril lab delete --all',
        });
      for (const n of names) {
        await deleteCluster(n, { progress: err });
        if (o.kubeconfig) unexportLabContext(n);
      }
    });

  lab
    .command('list')
    .alias('ls')
    .description('show lab clusters, their nodes, addresses and daemons')
    .option('-o, --output <format>', 'name (one cluster name a line) or json')
    .action((o: { output?: string }) => {
      if (o.output === undefined) return printList();
      if (o.output === 'name') {
        for (const c of listClusters()) process.stdout.write(`${c.name}\n`);
        return;
      }
      if (o.output === 'json') {
        const out = listClusters().map((c) => {
          const daemons = daemonStatus(c.name);
          const sup = supervisorPid(c.name);
          const h = clusterHealth(c, daemons, sup);
          return {
            ...c,
            health: h.word,
            problems: h.problems,
            supervisorPid: sup ?? null,
            daemons,
          };
        });
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      throw new TendrilError('BAD_FLAG', `-o ${o.output} is not an output format`, {
        hint: 'use -o name or -o json',
      });
    });

  lab
    .command('logs')
    .description("show a lab cluster's daemon logs (all of them, or one)")
    .argument('<name>', 'cluster name')
    .argument('[daemon]', 'daemon name (see `tendril lab list`), or "supervisor"')
    .option('-f, --follow', 'keep printing what is appended')
    .action(async (name: string, daemon: string | undefined, o: { follow?: boolean }) => {
      await showLogs(name, daemon, Boolean(o.follow));
    });
}
