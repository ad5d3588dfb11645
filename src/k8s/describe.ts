/**
 * `describe` text for objects, in kubectl's layout: pods and services in
 * detail, other kinds as name/labels/annotations followed by their spec and
 * status in YAML. Events are not recorded by the lab API server.
 */
import { stringify } from 'yaml';
import {
  conditionsOf,
  controllerOf,
  type ContainerPort,
  type KubeObject,
  type PodCondition,
} from './objects.js';

/** Aligned `Key:  value` lines; continuation lines of a value are indented to the value column. */
function kv(pairs: Array<[string, string]>, indent = ''): string {
  const w = Math.max(...pairs.map(([k]) => k.length + 1));
  const pad = indent.length + w + 1;
  return (
    pairs
      .map(
        ([k, v]) =>
          `${indent}${(k + ':').padEnd(w + 1)}${v.split('\n').join('\n' + ' '.repeat(pad))}`,
      )
      .join('\n') + '\n'
  );
}

function mapLines(m: Record<string, string> | undefined, _pad?: number): string {
  const e = Object.entries(m ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (e.length === 0) return '<none>';
  return e.map(([k, v]) => `${k}=${v}`).join('\n');
}

function annotations(m: Record<string, string> | undefined, pad: number): string {
  const e = Object.entries(m ?? {}).filter(
    ([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration',
  );
  return e.length ? mapLines(Object.fromEntries(e), pad) : '<none>';
}

/** describe for a Pod. */
export function describePod(pod: KubeObject): string {
  const pad = 18;
  const s = pod.status ?? {};
  const owner = controllerOf(pod);
  const node = pod.spec?.nodeName
    ? `${pod.spec.nodeName}${s.hostIP ? `/${s.hostIP}` : ''}`
    : '<none>';
  let out = kv([
    ['Name', pod.metadata.name!],
    ['Namespace', pod.metadata.namespace ?? 'default'],
    ['Priority', String(pod.spec?.priority ?? 0)],
    ['Service Account', pod.spec?.serviceAccountName ?? 'default'],
    ['Node', node],
    ['Start Time', s.startTime ?? '<unset>'],
    ['Labels', mapLines(pod.metadata.labels, pad)],
    ['Annotations', annotations(pod.metadata.annotations, pad)],
    [
      'Status',
      pod.metadata.deletionTimestamp
        ? `Terminating (lasts ${pod.metadata.deletionGracePeriodSeconds ?? 0}s)`
        : (s.phase ?? 'Unknown'),
    ],
    ...(s.reason ? ([['Reason', s.reason]] as Array<[string, string]>) : []),
    ...(s.message ? ([['Message', s.message]] as Array<[string, string]>) : []),
    ['IP', s.podIP ?? ''],
  ]);
  const ips = (s.podIPs ?? (s.podIP ? [{ ip: s.podIP }] : [])) as Array<{ ip: string }>;
  out += ips.length
    ? `IPs:\n${ips.map((i) => `  IP:  ${i.ip}`).join('\n')}\n`
    : 'IPs:              <none>\n';
  if (owner) out += `Controlled By:  ${owner.kind}/${owner.name}\n`;
  out += 'Containers:\n';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- container specs and statuses are schemaless JSON
  const statuses = (s.containerStatuses ?? []) as Array<Record<string, any>>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- container specs and statuses are schemaless JSON
  for (const c of (pod.spec?.containers ?? []) as Array<Record<string, any>>) {
    const st = statuses.find((x) => x.name === c.name);
    const ports = (c.ports ?? []) as ContainerPort[];
    const state = st?.state ? Object.keys(st.state)[0] : undefined;
    const stateInfo = state ? st!.state[state] : undefined;
    out += `  ${c.name}:\n`;
    const rows: Array<[string, string]> = [
      ['Container ID', st?.containerID ?? ''],
      ['Image', c.image],
      ['Image ID', st?.imageID ?? ''],
      [
        ports.length > 1 ? 'Ports' : 'Port',
        ports.length
          ? ports.map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`).join(', ')
          : '<none>',
      ],
      [
        'Host Port',
        ports.length
          ? ports.map((p) => `${p.hostPort ?? 0}/${p.protocol ?? 'TCP'}`).join(', ')
          : '<none>',
      ],
    ];
    if (c.command) rows.push(['Command', (c.command as string[]).join(' ')]);
    if (c.args) rows.push(['Args', (c.args as string[]).join(' ')]);
    rows.push(['State', state ? state[0]!.toUpperCase() + state.slice(1) : 'Waiting']);
    if (stateInfo?.reason) rows.push(['  Reason', stateInfo.reason]);
    if (stateInfo?.startedAt) rows.push(['  Started', stateInfo.startedAt]);
    if (stateInfo?.exitCode !== undefined) rows.push(['  Exit Code', String(stateInfo.exitCode)]);
    rows.push(
      ['Ready', String(st?.ready ?? false)],
      ['Restart Count', String(st?.restartCount ?? 0)],
    );
    const env = (c.env ?? []) as Array<{ name: string; value?: string }>;
    rows.push([
      'Environment',
      env.length ? env.map((e) => `${e.name}:  ${e.value ?? ''}`).join('\n') : '<none>',
    ]);
    out += kv(rows, '    ');
  }
  const conds = (s.conditions ?? []) as PodCondition[];
  out += 'Conditions:\n';
  if (conds.length) {
    const w = Math.max(4, ...conds.map((c) => c.type.length)) + 2;
    out +=
      `  ${'Type'.padEnd(w)}Status\n` +
      conds
        .map(
          (c) =>
            `  ${c.type.padEnd(w)}${c.status}${c.reason && c.status !== 'True' ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`,
        )
        .join('\n') +
      '\n';
  } else out += '  <none>\n';
  out += kv([
    ['QoS Class', s.qosClass ?? 'BestEffort'],
    ['Node-Selectors', mapLines(pod.spec?.nodeSelector, 18)],
    [
      'Tolerations',
      ((pod.spec?.tolerations ?? []) as Array<{ key?: string; operator?: string; effect?: string }>)
        .map((t) => `${t.key ?? ''}${t.operator === 'Exists' ? '' : ''}:${t.effect ?? ''}`)
        .join(', ') || '<none>',
    ],
    ['Events', '<none>'],
  ]);
  return out;
}

/** describe for a Service; `slices` are its EndpointSlices (for the Endpoints line). */
export function describeService(svc: KubeObject, slices: KubeObject[]): string {
  const pad = 19;
  const spec = svc.spec ?? {};
  const rows: Array<[string, string]> = [
    ['Name', svc.metadata.name!],
    ['Namespace', svc.metadata.namespace ?? 'default'],
    ['Labels', mapLines(svc.metadata.labels, pad)],
    ['Annotations', annotations(svc.metadata.annotations, pad)],
    [
      'Selector',
      Object.keys(spec.selector ?? {}).length
        ? Object.entries(spec.selector as Record<string, string>)
            .map(([k, v]) => `${k}=${v}`)
            .join(',')
        : '<none>',
    ],
    ['Type', spec.type ?? 'ClusterIP'],
  ];
  if (spec.type !== 'ExternalName') {
    rows.push(
      ['IP Family Policy', spec.ipFamilyPolicy ?? 'SingleStack'],
      ['IP Families', (spec.ipFamilies ?? ['IPv4']).join(',')],
      ['IP', spec.clusterIP ?? '<none>'],
      ['IPs', (spec.clusterIPs ?? []).join(',') || '<none>'],
    );
  } else rows.push(['External Name', spec.externalName ?? '']);
  for (const p of (spec.ports ?? []) as Array<{
    name?: string;
    port: number;
    protocol?: string;
    targetPort?: number | string;
    nodePort?: number;
  }>) {
    const proto = p.protocol ?? 'TCP';
    rows.push(['Port', `${p.name || '<unset>'}  ${p.port}/${proto}`]);
    rows.push(['TargetPort', `${p.targetPort ?? p.port}/${proto}`]);
    if (p.nodePort) rows.push(['NodePort', `${p.name || '<unset>'}  ${p.nodePort}/${proto}`]);
    const eps: string[] = [];
    for (const s of slices) {
      const sp = ((s.ports ?? []) as Array<{ name?: string; port?: number }>).find(
        (x) => (x.name ?? '') === (p.name ?? ''),
      );
      for (const e of (s.endpoints ?? []) as Array<{
        addresses: string[];
        conditions?: { ready?: boolean };
      }>) {
        if (e.conditions?.ready === false) continue;
        for (const a of e.addresses) eps.push(sp?.port ? `${a}:${sp.port}` : a);
      }
    }
    rows.push([
      'Endpoints',
      eps.length
        ? eps.slice(0, 3).join(',') + (eps.length > 3 ? ` + ${eps.length - 3} more...` : '')
        : '<none>',
    ]);
  }
  rows.push(['Session Affinity', spec.sessionAffinity ?? 'None']);
  if (spec.internalTrafficPolicy)
    rows.push(['Internal Traffic Policy', spec.internalTrafficPolicy]);
  const conds = conditionsOf(svc);
  if (conds.length)
    rows.push([
      'Conditions',
      conds
        .map(
          (c) =>
            `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`,
        )
        .join('\n'),
    ]);
  rows.push(['Events', '<none>']);
  return kv(rows);
}

/** describe for any other kind: metadata lines, then the rest as YAML. */
export function describeGeneric(o: KubeObject): string {
  const pad = 14;
  let out = kv([
    ['Name', o.metadata.name!],
    ...(o.metadata.namespace
      ? ([['Namespace', o.metadata.namespace]] as Array<[string, string]>)
      : []),
    ['Labels', mapLines(o.metadata.labels, pad)],
    ['Annotations', annotations(o.metadata.annotations, pad)],
    ['API Version', o.apiVersion],
    ['Kind', o.kind],
  ]);
  const rest: Record<string, unknown> = { ...o };
  delete rest.apiVersion;
  delete rest.kind;
  delete rest.metadata;
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    out +=
      `${k[0]!.toUpperCase()}${k.slice(1)}:\n` +
      stringify(v)
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n') +
      '\n';
  }
  out += 'Events:       <none>\n';
  return out;
}
