/**
 * Readiness probes (httpGet, tcpSocket) run by the kubelet from the node's
 * network namespace against the pod's IP, with Kubernetes' defaults
 * (initialDelaySeconds 0, periodSeconds 10, timeoutSeconds 1,
 * successThreshold 1, failureThreshold 3).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';

/** The probe fields the lab supports. */
export interface ProbeSpec {
  httpGet?: {
    path?: string;
    port: number | string;
    host?: string;
    scheme?: 'HTTP' | 'HTTPS';
    httpHeaders?: { name: string; value: string }[];
  };
  tcpSocket?: { port: number | string; host?: string };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

/** A container port as the pod spec declares it. */
export interface ContainerPort {
  name?: string;
  containerPort: number;
}

/** Resolves a probe port (number, numeric string or a named container port); undefined when unknown. */
export function resolvePort(
  port: number | string,
  ports: ContainerPort[] = [],
): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return ports.find((p) => p.name === port)?.containerPort;
}

/** Runs one probe attempt; resolves true on success. */
export function probeOnce(
  probe: ProbeSpec,
  podIP: string,
  ports: ContainerPort[] = [],
): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const g = probe.httpGet;
    const port = resolvePort(g.port, ports);
    if (port === undefined) return Promise.resolve(false);
    const req = g.scheme === 'HTTPS' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.29' };
      for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
      const r = req(
        {
          host: g.host ?? podIP,
          port,
          path: g.path ?? '/',
          method: 'GET',
          headers,
          timeout: timeoutMs,
          rejectUnauthorized: false,
        },
        (res) => {
          res.resume();
          resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
        },
      );
      r.on('timeout', () => r.destroy(new Error('timeout')));
      r.on('error', () => resolve(false));
      r.end();
    });
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, ports);
    if (port === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const s = connect({ host: probe.tcpSocket!.host ?? podIP, port, timeout: timeoutMs });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(false));
    });
  }
  // exec probes are not supported by the lab: treat as passing (documented)
  return Promise.resolve(true);
}

/** Tracks a probe's consecutive results against its thresholds. */
export class ProbeState {
  ready = false;
  private successes = 0;
  private failures = 0;

  constructor(private readonly probe: ProbeSpec) {}

  /** Records a result; returns whether readiness changed. */
  record(ok: boolean): boolean {
    const before = this.ready;
    if (ok) {
      this.failures = 0;
      this.successes++;
      if (this.successes >= (this.probe.successThreshold ?? 1)) this.ready = true;
    } else {
      this.successes = 0;
      this.failures++;
      if (this.failures >= (this.probe.failureThreshold ?? 3) || !this.ready) this.ready = false;
    }
    return before !== this.ready;
  }
}
