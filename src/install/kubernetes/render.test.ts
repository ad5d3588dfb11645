import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../k8s/objects.js';
import { deployFiles } from './deploy-files.js';
import { dryRunInstall } from './dry-run.js';
import { NAMES, SECRET_NAMES } from './names.js';
import {
  CONFIG_DIR,
  KUBERNETES_NODE_CONFIG,
  clusterConfigData,
  configMapData,
  resolveManifestOptions,
} from './options.js';
import { DAEMON_RULES } from './rbac.js';
import { renderManifests } from './render.js';
import { parse } from 'yaml';
import { KUBECONFIG_PATH, cniConflist, installCniScript, meshEtcdCommand } from './workloads.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const full = resolveManifestOptions({
  clusterName: 'cluster1',
  clusterId: 7,
  clustermesh: { serviceType: 'NodePort' },
});
const objs = renderManifests(full);
const find = (kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o;
};
const dataOf = (o: KubeObject) => o.data as Record<string, string>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- pod specs are read as JSON
const podSpec = (o: KubeObject): any => o.spec.template.spec;

describe('deploy/kubernetes', () => {
  it('the committed files are what the renderer makes (regenerate: npm run render-manifests)', () => {
    for (const f of deployFiles()) {
      const committed = readFileSync(root + f.path, 'utf8');
      assert.ok(
        committed === f.content,
        `${f.path} differs from a fresh render: run \`npm run render-manifests\` and commit it`,
      );
    }
  });
});

describe('manifest renderer', () => {
  it('renders every kind an install needs, names unique per kind', () => {
    const kinds = new Set(objs.map((o) => o.kind));
    for (const k of [
      'CustomResourceDefinition',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'DaemonSet',
      'Deployment',
      'Service',
    ])
      assert.ok(kinds.has(k), k);
    const keys = objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    assert.equal(new Set(keys).size, keys.length);
    for (const o of objs)
      if (!['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind))
        assert.equal(o.metadata.namespace, 'kube-system', `${o.kind} ${o.metadata.name}`);
    assert.ok(
      !kinds.has('Secret'),
      'no Secret in the install: their data exists only at enable time',
    );
  });

  it('the ConfigMap is configMapData: one string key per setting plus cluster name, ID and pod CIDR', () => {
    const cm = find('ConfigMap', NAMES.config);
    assert.deepEqual(cm.data, configMapData(full));
    // the cluster-wide part (what the lab writes) plus the agent's node-local paths on a real node
    assert.deepEqual(
      Object.keys(cm.data),
      [...Object.keys(clusterConfigData(full)), ...Object.keys(KUBERNETES_NODE_CONFIG)].sort(),
    );
    assert.equal(clusterConfigData(full)['bpf-root'], undefined);
    assert.equal(cm.data['bpf-lb-algorithm'], 'random');
    assert.equal(cm.data['lb-algorithm'], undefined);
    assert.equal(cm.data['socket-path'], '/var/run/tendril/agent.sock');
    assert.equal(cm.data['cluster-name'], 'cluster1');
    assert.equal(cm.data['cluster-id'], '7');
    assert.equal(cm.data['cluster-pool-ipv4-cidr'], '10.244.0.0/16');
    assert.equal(cm.data['routing-mode'], 'native');
    assert.deepEqual(Object.keys(cm.data), [...Object.keys(cm.data)].sort());
    for (const v of Object.values(cm.data)) assert.equal(typeof v, 'string');
    const tunnel = resolveManifestOptions({
      clusterName: 'c2',
      set: ['routing-mode=tunnel', 'mtu=9000'],
    });
    assert.equal(configMapData(tunnel)['routing-mode'], 'tunnel');
    assert.equal((cniConflist(tunnel).plugins as Array<{ mtu: number }>)[0]!.mtu, 8950);
  });

  it('every daemon container runs a real entry point of this tree from the config dir', () => {
    const workloads = objs.filter((o) => o.kind === 'DaemonSet' || o.kind === 'Deployment');
    assert.equal(workloads.length, 4);
    for (const w of workloads) {
      for (const c of podSpec(w).containers) {
        if (c.name === 'etcd') continue;
        assert.equal(c.command[0], 'node');
        const entry = c.command.find((a: string) => a.endsWith('main.ts'));
        assert.ok(entry && existsSync(root + entry), `${w.metadata.name}/${c.name}: ${entry}`);
        assert.equal(c.workingDir, '/opt/tendril');
        assert.deepEqual(
          c.command.slice(c.command.indexOf('--import'), c.command.indexOf('--import') + 2),
          ['--import', 'tsx'],
        );
        assert.equal(c.command[c.command.indexOf('--kubeconfig') + 1], KUBECONFIG_PATH);
        // the DNS daemon takes flags, not a config dir
        if (c.name === 'dns') continue;
        assert.equal(c.command[c.command.indexOf('--config-dir') + 1], CONFIG_DIR);
        assert.ok(
          c.volumeMounts.some((m: { mountPath: string }) => m.mountPath === CONFIG_DIR),
          `${c.name} mounts the config`,
        );
      }
    }
    assert.ok(existsSync(root + 'src/agent/cni/main.ts'));
    assert.match(installCniScript(), /src\/agent\/cni\/main\.ts/);
  });

  it("the daemons' kubeconfig names the API server, its CA and the pod's own token", () => {
    const kc = parse(dataOf(find('ConfigMap', NAMES.kubeconfig)).kubeconfig!);
    assert.equal(kc.clusters[0].cluster.server, 'https://kubernetes.default.svc:443');
    assert.equal(
      kc.clusters[0].cluster['certificate-authority'],
      '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    );
    assert.equal(kc.users[0].user.tokenFile, '/var/run/secrets/kubernetes.io/serviceaccount/token');
    const other = renderManifests(
      resolveManifestOptions({ clusterName: 'c', apiServer: 'https://10.0.0.1:6443' }),
    ).find((o) => o.metadata.name === NAMES.kubeconfig)!;
    assert.equal(
      parse(dataOf(other).kubeconfig!).clusters[0].cluster.server,
      'https://10.0.0.1:6443',
    );
    assert.throws(
      () => resolveManifestOptions({ clusterName: 'c', apiServer: 'http://10.0.0.1:8080' }),
      /invalid API server URL/,
    );
  });

  it('the agent is a privileged host-network DaemonSet with bpffs, cgroup, netns and CNI dirs', () => {
    const ds = find('DaemonSet', NAMES.agent);
    const spec = podSpec(ds);
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.serviceAccountName, NAMES.agent);
    const agent = spec.containers[0];
    assert.equal(agent.securityContext.privileged, true);
    const hostPaths = Object.fromEntries(
      spec.volumes
        .filter((v: { hostPath?: unknown }) => v.hostPath)
        .map((v: { name: string; hostPath: { path: string } }) => [v.hostPath.path, v.name]),
    );
    for (const p of [
      '/sys/fs/bpf',
      '/sys/fs/cgroup',
      '/var/run/netns',
      '/opt/cni/bin',
      '/etc/cni/net.d',
    ])
      assert.ok(hostPaths[p], `hostPath ${p}`);
    const bpf = agent.volumeMounts.find(
      (m: { mountPath: string }) => m.mountPath === '/sys/fs/bpf',
    );
    assert.equal(bpf.mountPropagation, 'Bidirectional');
    assert.equal(agent.env[0].valueFrom.fieldRef.fieldPath, 'spec.nodeName');
    const mesh = spec.volumes.find((v: { name: string }) => v.name === 'clustermesh');
    assert.deepEqual(
      [mesh.secret.secretName, mesh.secret.optional],
      [SECRET_NAMES.agentMesh, true],
    );
  });

  it('the clustermesh-apiserver runs etcd as a sidecar with mutual TLS, exposed per service type', () => {
    const d = find('Deployment', NAMES.meshApiserver);
    const names = podSpec(d).containers.map((c: { name: string }) => c.name);
    assert.deepEqual(names, ['etcd', 'apiserver']);
    const etcd = meshEtcdCommand();
    assert.equal(etcd[0], 'etcd');
    assert.ok(etcd.includes('--client-cert-auth=true'));
    assert.ok(etcd.includes('--listen-client-urls=https://127.0.0.1:2379,https://$(POD_IP):2379'));
    assert.equal(find('Service', NAMES.meshApiserver).spec.ports[0].nodePort, 32379);
    for (const t of ['LoadBalancer', 'ClusterIP'] as const) {
      const svc = renderManifests(
        resolveManifestOptions({ clusterName: 'c', clustermesh: { serviceType: t } }),
      ).find((o) => o.kind === 'Service' && o.metadata.name === NAMES.meshApiserver)!;
      assert.equal(svc.spec.type, t);
      assert.equal(svc.spec.ports[0].nodePort, undefined);
    }
    assert.ok(
      !renderManifests(resolveManifestOptions({ clusterName: 'c' })).some(
        (o) => o.metadata.name === NAMES.meshApiserver,
      ),
      'no clustermesh-apiserver unless asked',
    );
  });
});

describe('RBAC: least privilege per daemon', () => {
  const can = (sa: string, verb: string, resource: string) =>
    (find('ClusterRole', sa).rules as Array<{ resources: string[]; verbs: string[] }>).some(
      (r) => r.resources.includes(resource) && r.verbs.includes(verb),
    );
  const daemons = [NAMES.agent, NAMES.operator, NAMES.dns, NAMES.meshApiserver];

  it('each daemon has its ServiceAccount bound to its own ClusterRole', () => {
    for (const sa of daemons) {
      find('ServiceAccount', sa);
      const b = find('ClusterRoleBinding', sa);
      assert.equal((b.roleRef as { name: string }).name, sa);
      assert.deepEqual(b.subjects, [
        { kind: 'ServiceAccount', name: sa, namespace: 'kube-system' },
      ]);
    }
  });

  it('only the operator writes CiliumIdentities; only the agent writes CiliumEndpoints', () => {
    for (const sa of daemons)
      for (const verb of ['create', 'update', 'patch', 'delete'])
        assert.equal(
          can(sa, verb, 'ciliumidentities'),
          sa === NAMES.operator && ['create', 'delete'].includes(verb),
          `${sa} ${verb} ciliumidentities`,
        );
    for (const sa of daemons)
      assert.equal(
        can(sa, 'create', 'ciliumendpoints'),
        sa === NAMES.agent,
        `${sa} create ciliumendpoints`,
      );
    assert.ok(can(NAMES.agent, 'watch', 'ciliumidentities'));
    assert.ok(can(NAMES.operator, 'create', 'serviceimports'));
    assert.ok(!can(NAMES.agent, 'create', 'serviceimports'));
  });

  it('nobody reads Secrets or writes Deployments; no wildcards', () => {
    for (const [sa, rules] of Object.entries(DAEMON_RULES)) {
      for (const r of rules) {
        assert.ok(!r.resources.includes('secrets'), `${sa} secrets`);
        assert.ok(!r.resources.includes('deployments'), `${sa} deployments`);
        assert.ok(
          !r.resources.includes('*') && !r.verbs.includes('*') && !r.apiGroups.includes('*'),
        );
      }
    }
    for (const sa of [NAMES.dns, NAMES.meshApiserver])
      for (const r of DAEMON_RULES[sa]!) assert.deepEqual(r.verbs, ['get', 'list', 'watch'], sa);
  });
});

describe('tendril install --dry-run', () => {
  it('prints multi-document YAML (default) and a JSON List of the same objects', () => {
    const yaml = dryRunInstall({ clusterName: 'c1', clusterId: '3' });
    const docs = parseAllDocuments(yaml).map((d) => d.toJS() as KubeObject);
    const json = JSON.parse(dryRunInstall({ clusterName: 'c1', clusterId: '3', output: 'json' }));
    assert.equal(json.kind, 'List');
    assert.deepEqual(json.items, docs);
    assert.deepEqual(
      docs,
      renderManifests(resolveManifestOptions({ clusterName: 'c1', clusterId: 3 })),
    );
  });

  it('bad input names the problem and the fix', () => {
    assert.throws(
      () => dryRunInstall({ clusterName: 'c1', output: 'wide' }),
      /unknown output format "wide"/,
    );
    assert.throws(
      () => dryRunInstall({ clusterName: 'c1', output: 'json', dryRun: false }),
      /only for --dry-run/,
    );
    assert.throws(() => dryRunInstall({ clusterName: 'Bad_Name' }), /invalid cluster name/);
    assert.throws(
      () => dryRunInstall({ clusterName: 'c1', clusterId: '256' }),
      /invalid cluster ID/,
    );
    assert.throws(
      () => dryRunInstall({ clusterName: 'c1', set: ['routing-mode=ospf'] }),
      /routing-mode/,
    );
    assert.throws(
      () => dryRunInstall({ clusterName: 'c1', podCIDR: '10.0.0/8' }),
      /invalid pod CIDR/,
    );
    assert.throws(
      () => dryRunInstall({ clusterName: 'c1', dnsServiceIP: '10.200.0.1' }),
      /not in the service CIDR/,
    );
    assert.throws(
      () => dryRunInstall({ clusterName: 'c1', clustermesh: { serviceType: 'External' } }),
      /invalid service type "External"/,
    );
  });
});
