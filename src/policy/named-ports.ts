/** Named container ports of a pod, for named ports in policy rules. */
import type { NamedPort } from './engine.js';

/** The named ports of a pod object (undefined when it has none). */
export function podNamedPorts(pod: unknown): NamedPort[] | undefined {
  const containers =
    (pod as { spec?: { containers?: unknown[] } } | undefined)?.spec?.containers ?? [];
  const out: NamedPort[] = [];
  for (const c of containers as Array<{ ports?: Array<Record<string, unknown>> }>)
    for (const p of c.ports ?? []) {
      if (typeof p.name !== 'string' || typeof p.containerPort !== 'number') continue;
      const protocol = (p.protocol as NamedPort['protocol'] | undefined) ?? 'TCP';
      out.push({ name: p.name, port: p.containerPort, protocol });
    }
  return out.length ? out : undefined;
}
