/**
 * The lab end to end, as root: two clusters (one with the etcd store),
 * the seed's manifests, pods Pending without a network plugin, running with
 * a minimal CNI plugin this test provides, restart policies, logs, `run
 * --rm` with its exit status, exec, and `lab delete` leaving nothing behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { after } from 'node:test';
import { privilegedTest } from '../../test/helpers/privileged.js';
import {
  cli as tendril,
  podRunning,
  processesOfHome,
  teardownLab,
  until,
  useUniqueLab,
} from '../../test/e2e/lab-fixture.js';

const lab = useUniqueLab('lab');
const { prefix, home } = lab;
after(() => teardownLab(lab));

const { KubeClient } = await import('../k8s/client.js');
const { createCluster } = await import('./create.js');
const { deleteAllClusters, deleteCluster } = await import('./teardown.js');
const { addDaemon, daemonStatus, projectRoot, supervisorPid, waitDaemonRunning } =
  await import('./daemons.js');
const { listLabNetns } = await import('./netns.js');
const { labCgroupRoot } = await import('./cgroup.js');
const { nodeBpffsDir } = await import('./layout.js');
const { apiServerURL, nodeCniBinDir, nodeCniConfDir, listClusters } = await import('./state.js');
const { sleep } = await import('./proc.js');
type KubeObject = import('../k8s/objects.js').KubeObject;

/** The minimal CNI plugin: a veth pair, a static /32 from the node's pod CIDR, routes; a CNI 1.0 result. */
const PLUGIN = `#!/bin/sh
conf=$(cat)
prefix=$(printf '%s' "$conf" | sed -n 's/.*"podPrefix" *: *"\\([0-9.]*\\)".*/\\1/p')
statedir=$(printf '%s' "$conf" | sed -n 's/.*"stateDir" *: *"\\([^"]*\\)".*/\\1/p')
host="tv$(printf '%s' "$CNI_CONTAINERID" | tr -d '-' | cut -c1-10)"
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS $CNI_ARGS" >> "$statedir.calls"
case "$CNI_COMMAND" in
ADD)
  mkdir -p "$statedir"
  exec 9>"$statedir/lock"; flock 9
  n=$(cat "$statedir/next" 2>/dev/null || echo 2); echo $((n + 1)) > "$statedir/next"
  ip="$prefix.$n"
  ip link add "$host" type veth peer name "$CNI_IFNAME" netns "$CNI_NETNS" || { echo '{"cniVersion":"1.0.0","code":11,"msg":"cannot make the veth pair"}'; exit 1; }
  ip link set "$host" up
  echo 1 > "/proc/sys/net/ipv4/conf/$host/proxy_arp"
  ip route add "$ip/32" dev "$host"
  nsenter --net="$CNI_NETNS" sh -c "ip addr add $ip/32 dev $CNI_IFNAME && ip link set $CNI_IFNAME up && ip route add default dev $CNI_IFNAME"
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s"},{"name":"%s","sandbox":"%s"}],"ips":[{"address":"%s/32","interface":1}]}\\n' "$host" "$CNI_IFNAME" "$CNI_NETNS" "$ip"
  ;;
DEL) ip link del "$host" 2>/dev/null; true ;;
esac
exit 0
`;

/** `tendril ARGS`; generous: on a loaded 2-core machine a pod's start can take tens of seconds. */
const cli = (args: string[], input?: string) => tendril(args, { input, timeoutMs: 150_000 });

function processesInLabNetns(): number[] {
  const inodes = new Set<string>();
  for (const n of readdirSync('/run/netns').filter((n) => n.startsWith(prefix)))
    inodes.add(
      `net:[${execFileSync('stat', ['-L', '-c', '%i', `/run/netns/${n}`])
        .toString()
        .trim()}]`,
    );
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${d}/ns/net`))) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

privilegedTest(
  'privileged: lab clusters, pods through a test CNI plugin, run/exec/logs, delete leaves nothing',
  async () => {
    const progress: string[] = [];
    const a = await createCluster({ name: 'alpha', wait: true, progress: (l) => progress.push(l) });
    const b = await createCluster({ name: 'beta', nodes: 1, apiStore: 'etcd', wait: true });
    assert.ok(
      progress.some((l) => /Nodes: alpha-control-plane 172\.30\.1\.10/.test(l)),
      progress.join('\n'),
    );
    assert.equal(a.podCIDR, '10.244.0.0/16');
    assert.equal(b.podCIDR, '10.245.0.0/16');
    assert.deepEqual(
      a.nodes.map((n) => n.name),
      ['alpha-control-plane', 'alpha-worker', 'alpha-worker2'],
    );
    assert.equal(a.nodes[2]!.podCIDR, '10.244.2.0/24');
    assert.equal(b.nodes[1]!.ip, '172.30.2.11');
    assert.deepEqual(
      listClusters().map((c) => c.name),
      ['alpha', 'beta'],
    );
    for (const d of [...daemonStatus('alpha'), ...daemonStatus('beta')])
      assert.ok(d.running, `${d.name} runs`);
    assert.ok(daemonStatus('beta').some((d) => d.name === 'etcd'));

    // bad requests
    await assert.rejects(
      createCluster({ name: 'gamma', podCIDR: '10.244.128.0/20' }),
      (err: Error) => {
        assert.match(err.message, /10\.244\.128\.0\/20.*"gamma".*10\.244\.0\.0\/16.*"alpha"/);
        assert.match((err as { hint?: string }).hint ?? '', /--pod-cidr/);
        return true;
      },
    );
    await assert.rejects(createCluster({ name: 'alpha' }), /already exists/);
    await assert.rejects(createCluster({ name: 'Bad_Name' }), /invalid lab cluster name/);

    // nodes reach the API server at <control plane>:6443; nodes are registered as kind would
    const client = new KubeClient({ server: apiServerURL(a) });
    const nodes = await client.list('v1', 'Node');
    const cp = nodes.items.find((n) => n.metadata.name === 'alpha-control-plane')!;
    assert.deepEqual(cp.spec.taints, [
      { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
    ]);
    assert.equal(cp.metadata.labels!['node-role.kubernetes.io/control-plane'], '');
    const w2 = nodes.items.find((n) => n.metadata.name === 'alpha-worker2')!;
    assert.equal(w2.spec.podCIDR, '10.244.2.0/24');
    assert.deepEqual(w2.status.addresses[0], { type: 'InternalIP', address: '172.30.1.12' });

    // the seed's manifests, through the API client
    const docs = parseAllDocuments(
      readFileSync(join(projectRoot(), 'examples/seed-walkthrough/echo-c1.yaml'), 'utf8'),
    ).map((d) => d.toJS() as KubeObject);
    for (const d of docs) await client.create(d);
    const pending = await until('echo pod Pending with NetworkPluginNotReady', async () => {
      const pods = await client.list('v1', 'Pod', {
        namespace: 'default',
        labelSelector: 'app=echo-service-c1',
      });
      const p = pods.items[0];
      const ready = p?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      return ready?.reason === 'NetworkPluginNotReady' ? p : undefined;
    });
    assert.equal(pending.status.phase, 'Pending');
    assert.match(
      pending.status.conditions.find((c: { type: string }) => c.type === 'Ready').message,
      /cni plugin not initialized/,
    );
    await sleep(2500); // still Pending after a few re-checks
    const again = await client.get('v1', 'Pod', pending.metadata.name!, { namespace: 'default' });
    assert.equal(again.status.phase, 'Pending');

    // install the test's CNI plugin on every node of alpha
    const pluginDir = join(home, 'plugin-state');
    mkdirSync(pluginDir, { recursive: true });
    for (const n of a.nodes) {
      const bin = join(nodeCniBinDir('alpha', n.name), 'static-veth');
      writeFileSync(bin, PLUGIN);
      chmodSync(bin, 0o755);
      const pfx = n.podCIDR.split('.').slice(0, 3).join('.');
      writeFileSync(
        join(nodeCniConfDir('alpha', n.name), '10-test.conflist'),
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'testnet',
          plugins: [{ type: 'static-veth', podPrefix: pfx, stateDir: join(pluginDir, n.name) }],
        }),
      );
    }
    const running = await until('echo pod Running', async () => {
      const p = await client.get('v1', 'Pod', pending.metadata.name!, { namespace: 'default' });
      return p.status?.phase === 'Running' &&
        p.status.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status === 'True'
        ? p
        : undefined;
    });
    const node = a.nodes.find((n) => n.name === running.spec.nodeName)!;
    assert.equal(node.role, 'worker');
    assert.equal(running.status.hostIP, node.ip);
    assert.equal(running.status.podIP, `${node.podCIDR.split('.').slice(0, 3).join('.')}.2`);
    assert.deepEqual(running.status.podIPs, [{ ip: running.status.podIP }]);
    const calls = readFileSync(join(pluginDir, `${node.name}.calls`), 'utf8');
    assert.match(
      calls,
      new RegExp(
        `ADD ${running.metadata.uid} eth0 /run/netns/${prefix}-pod-\\w{12} IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${running.metadata.name};K8S_POD_INFRA_CONTAINER_ID=${running.metadata.uid};K8S_POD_UID=${running.metadata.uid}`,
      ),
    );
    // the echo server answers on the pod IP, from the node's namespace
    /** curl http://<pod IP>:8080PATH from the node's namespace: the body, or undefined on failure. */
    const curlPod = (path: string): string | undefined => {
      const r = spawnSync(
        'nsenter',
        [
          `--net=/run/netns/${node.netns}`,
          'curl',
          '-s',
          '-m',
          '3',
          `http://${running.status.podIP}:8080${path}`,
        ],
        { encoding: 'utf8' },
      );
      return r.status === 0 ? r.stdout : undefined;
    };
    const body = await until('echo server answers', async () => {
      const out = curlPod('/seed?x=1');
      return out ? JSON.parse(out) : undefined;
    });
    assert.equal(body.path, '/seed');
    assert.deepEqual(body.query, { x: '1' });
    assert.equal(body.os.hostname, running.metadata.name);
    assert.equal(body.ip, node.ip);
    // a kubelet killed and restarted by the supervisor adopts the sandbox (CNI CHECK) and restarts the container
    const kubelet = daemonStatus('alpha').find((d) => d.name === `kubelet-${node.name}`)!;
    process.kill(kubelet.pid!, 'SIGKILL');
    await until('pod running again after the kubelet restart', async () => {
      const p = await client.get('v1', 'Pod', running.metadata.name!, { namespace: 'default' });
      const started = p.status?.containerStatuses?.[0]?.state?.running?.startedAt;
      return started && started !== running.status.containerStatuses[0].state.running.startedAt
        ? p
        : undefined;
    });
    assert.match(
      readFileSync(join(pluginDir, `${node.name}.calls`), 'utf8'),
      new RegExp(`CHECK ${running.metadata.uid} eth0`),
    );
    assert.equal(daemonStatus('alpha').find((d) => d.name === `kubelet-${node.name}`)!.restarts, 1);
    await until('echo server answers again', async () =>
      curlPod('/')?.includes(running.metadata.name!) ? true : undefined,
    );

    // EndpointSlice kept as the user wrote it
    const eps = await client.get('discovery.k8s.io/v1', 'EndpointSlice', 'echo-service-c1-mesh', {
      namespace: 'default',
    });
    assert.equal(eps.metadata.labels!['cilium.io/global-service'], 'true');

    // restart policies
    const mk = (name: string, policy: string, script: string): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default' },
      spec: {
        restartPolicy: policy,
        containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', script] }],
      },
    });
    await client.create(mk('never-fails', 'Never', 'echo bye; exit 4'));
    await client.create(mk('onfailure', 'OnFailure', 'echo try; exit 1'));
    await client.create(mk('always-ok', 'Always', 'echo tick; exit 0'));
    await client.create(mk('succeeds', 'OnFailure', 'echo fine'));
    const get = (n: string) => client.get('v1', 'Pod', n, { namespace: 'default' });
    const failed = await until('Never pod Failed', async () =>
      (await get('never-fails')).status?.phase === 'Failed' ? get('never-fails') : undefined,
    );
    assert.equal(failed.status.containerStatuses[0].state.terminated.exitCode, 4);
    assert.equal(failed.status.containerStatuses[0].restartCount, 0);
    await until('OnFailure pod restarted', async () =>
      (await get('onfailure')).status?.containerStatuses?.[0]?.restartCount >= 1 ? true : undefined,
    );
    await until('Always pod restarted', async () =>
      (await get('always-ok')).status?.containerStatuses?.[0]?.restartCount >= 1 ? true : undefined,
    );
    const ok = await until('OnFailure pod Succeeded', async () =>
      (await get('succeeds')).status?.phase === 'Succeeded' ? get('succeeds') : undefined,
    );
    assert.equal(ok.status.containerStatuses[0].restartCount, 0);

    // readiness probe: running but not Ready until the probed port answers
    await client.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'probed', namespace: 'default' },
      spec: {
        containers: [
          {
            name: 'web',
            image: 'busybox',
            command: ['sh', '-c', 'sleep 3; exec httpd -f -p 9999'],
            readinessProbe: { tcpSocket: { port: 9999 }, periodSeconds: 1, failureThreshold: 1 },
          },
        ],
      },
    });
    const readyOf = (p: KubeObject) =>
      p.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status;
    // polled every 150 ms: seen Running well before the probed port opens (3 s)
    const notYet = await until(
      'probed pod Running',
      async () => ((await get('probed')).status?.phase === 'Running' ? get('probed') : undefined),
      30_000,
      150,
    );
    assert.equal(readyOf(notYet), 'False');
    assert.equal(notYet.status.containerStatuses[0].ready, false);
    await until('probed pod Ready', async () =>
      readyOf(await get('probed')) === 'True' ? true : undefined,
    );

    // daemon logs
    const klog = await cli(['lab', 'logs', 'alpha', 'kubelet-alpha-worker']);
    assert.equal(klog.status, 0);
    assert.match(klog.out, /node registered .*node=alpha-worker ip=172\.30\.1\.11/);
    assert.match((await cli(['lab', 'logs', 'alpha'])).out, /==> apiserver /);
    assert.match((await cli(['lab', 'logs', 'alpha', 'nope'])).err, /has no log for daemon "nope"/);

    // logs, exec, run --rm through the CLI
    const logs = await cli(['--context', 'lab-alpha', 'logs', 'never-fails']);
    assert.equal(logs.out, 'bye\n');
    const ex = await cli([
      '--context',
      'lab-alpha',
      'exec',
      running.metadata.name!,
      '--',
      'sh',
      '-c',
      'cat /etc/resolv.conf; hostname; exit 5',
    ]);
    assert.equal(ex.status, 5);
    assert.equal(
      ex.out,
      `search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n${running.metadata.name}\n`,
    );
    const run = await cli(
      [
        '--context',
        'lab-alpha',
        'run',
        '-i',
        '--rm',
        '--restart=Never',
        'runner',
        '--image=busybox',
        '--',
        'sh',
        '-c',
        'read x; echo "got $x"; exit 3',
      ],
      'hello\n',
    );
    assert.equal(run.status, 3, run.err);
    assert.equal(run.out, 'got hello\npod "runner" deleted\n');
    await assert.rejects(get('runner'), /not found/);
    const bad = await cli([
      '--context',
      'lab-alpha',
      'run',
      '--attach',
      '--rm',
      '--restart=Never',
      'noimg',
      '--image=nginx',
    ]);
    assert.equal(bad.status, 1);
    assert.match(bad.err, /image "nginx" is not available in the lab/);

    // a pod deleted through the API: processes, namespace and cgroup go
    const uid = running.metadata.uid!;
    await client.delete('v1', 'Pod', running.metadata.name!, { namespace: 'default' });
    await until('pod sandbox removed', async () =>
      !existsSync(`/run/netns/${prefix}-pod-${uid.replace(/-/g, '').slice(0, 12)}`)
        ? true
        : undefined,
    );
    assert.match(
      readFileSync(join(pluginDir, `${node.name}.calls`), 'utf8'),
      new RegExp(`DEL ${uid} eth0`),
    );

    // something of another part in bpffs: a pinned map under the node's directory
    const pinDir = nodeBpffsDir('alpha', 'alpha-worker');
    mkdirSync(pinDir, { recursive: true });
    execFileSync('bpftool', [
      'map',
      'create',
      join(pinDir, 'test_map'),
      'type',
      'hash',
      'key',
      '4',
      'value',
      '4',
      'entries',
      '4',
      'name',
      'labtest',
    ]);

    // a hostNetwork pod runs without a network plugin, in the node's namespace; deleting it keeps that namespace
    const bclient = new KubeClient({ server: apiServerURL(b) });
    await bclient.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'hostnet', namespace: 'default' },
      spec: {
        hostNetwork: true,
        containers: [
          {
            name: 'c',
            image: 'busybox',
            command: ['sh', '-c', 'ip -o -4 addr show eth0; hostname; exec sleep 3600'],
          },
        ],
      },
    });
    const hn = await podRunning(bclient, 'hostnet');
    const bnode = b.nodes.find((n) => n.name === hn.spec.nodeName)!;
    assert.equal(hn.status.podIP, bnode.ip);
    const hnLog = await until('hostNetwork pod output', async () => {
      const r = await cli(['--context', 'lab-beta', 'logs', 'hostnet']);
      return r.out.includes(bnode.name) ? r.out : undefined;
    });
    assert.match(hnLog, new RegExp(`inet ${bnode.ip.replace(/\./g, '\\.')}/16`));
    await bclient.delete('v1', 'Pod', 'hostnet', { namespace: 'default' });
    await until('hostNetwork pod gone', async () =>
      (await bclient.getOrUndefined('v1', 'Pod', 'hostnet', { namespace: 'default' }))
        ? undefined
        : true,
    );
    assert.ok(existsSync(`/run/netns/${bnode.netns}`), 'the node namespace stays');
    bclient.close();

    // lab list shows a killed daemon as not running
    process.kill(supervisorPid('beta')!, 'SIGKILL');
    const kube = daemonStatus('beta').find((d) => d.name.startsWith('kubelet'))!;
    process.kill(kube.pid!, 'SIGKILL');
    await sleep(100);
    const list = await cli(['lab', 'list']);
    assert.match(list.out, /CLUSTER beta .*health DEGRADED/);
    assert.match(list.out, /supervisor not running/);

    client.close();
    client.close();
    // a daemon of another part that leaves a detached child in the root namespace
    addDaemon('alpha', {
      name: 'spawner',
      command: ['/bin/sh', '-c', 'setsid sleep 1001 & exec sleep 1002'],
      restart: 'always',
    });
    await waitDaemonRunning('alpha', 'spawner', 10_000);
    await deleteCluster('alpha');
    await deleteCluster('beta');
    await deleteCluster('beta'); // idempotent

    // nothing left: namespaces, links (they live in the namespaces), cgroups, pins, processes, files, contexts
    assert.deepEqual(listLabNetns(), []);
    assert.equal(execFileSync('ip', ['-o', 'link']).toString().includes(prefix), false);
    assert.equal(existsSync(labCgroupRoot()), false);
    assert.equal(existsSync(`/sys/fs/bpf/${prefix}`), false);
    assert.deepEqual(processesOfHome(home), []);
    assert.deepEqual(processesInLabNetns(), []);
    assert.equal(existsSync(join(home, 'clusters')), false);
    assert.doesNotMatch(readFileSync(join(home, 'config'), 'utf8'), /lab-alpha|lab-beta/);
  },
  { timeout: 300_000 }, // two clusters and a dozen pods on a shared 2-core machine
);

privilegedTest(
  'privileged: lab delete cleans half-made clusters (namespaces without state, state without namespaces)',
  async () => {
    // start from a clean lab even if the previous test failed half-way
    await deleteAllClusters();
    // namespaces and a cgroup without state
    execFileSync('ip', ['netns', 'add', `${prefix}-half-control-plane`]);
    execFileSync('ip', ['netns', 'add', `${prefix}-half-worker`]);
    mkdirSync(join(labCgroupRoot(), 'half', 'half-worker', '0123456789ab-cdef'), {
      recursive: true,
    });
    const c = await createCluster({ name: 'whole', nodes: 0 });
    // state without namespaces (as after a reboot)
    execFileSync('ip', ['netns', 'del', c.nodes[0]!.netns]);
    const list = await cli(['lab', 'list']);
    assert.match(list.out, /CLUSTER half .*BROKEN/);
    assert.match(list.out, /MISSING/);
    await deleteCluster('half');
    // the cluster whose node namespace vanished comes back with `lab restart`
    const r = await cli(['lab', 'restart', 'whole', '--wait']);
    assert.equal(r.status, 0, r.err);
    assert.ok(existsSync(`/run/netns/${c.nodes[0]!.netns}`));
    assert.match((await cli(['lab', 'list'])).out, /CLUSTER whole .*health OK/);
    assert.deepEqual(
      listLabNetns().filter((n) => n.includes('half')),
      [],
    );
    assert.equal(existsSync(join(labCgroupRoot(), 'half')), false);
    await deleteCluster('whole');
    assert.deepEqual(listLabNetns(), []);
    assert.equal(existsSync(labCgroupRoot()), false);
    assert.deepEqual(processesOfHome(home), []);
  },
);
