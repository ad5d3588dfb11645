/**
 * The test side of test/e2e/matrix-prober.mjs: a long-lived prober process
 * (usually inside a pod, see inPodCommand in lab-fixture.ts) spoken to by
 * JSON lines on its stdin and stdout, each request answered by id.
 *
 *   const prober = new Prober(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
 *   await prober.ready;
 *   await prober.reach('10.1.0.5', 1500); // true when it echoed
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A matrix prober process; see matrix-prober.mjs for its requests. */
export class Prober {
  private next = 0;
  private readonly waiting = new Map<number, (v: Record<string, unknown>) => void>();
  /** Resolves once the prober listens on every port it was given. */
  readonly ready: Promise<void>;

  /** CHILD runs matrix-prober.mjs with stdin and stdout piped; TIMEOUTMS goes with a request that names none. */
  constructor(
    readonly child: ChildProcess,
    private readonly timeoutMs = 2000,
  ) {
    let onReady!: () => void;
    this.ready = new Promise((r) => (onReady = r));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Record<string, unknown>;
      if (m.ready) onReady();
      else this.waiting.get(m.id as number)?.(m);
    });
  }

  /** Sends REQ (`op` and its fields) with a new id and resolves with the answer to it. */
  call(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = ++this.next;
    return new Promise((resolve) => {
      this.waiting.set(id, (m) => {
        this.waiting.delete(id);
        resolve(m);
      });
      this.child.stdin!.write(JSON.stringify({ id, timeoutMs: this.timeoutMs, ...req }) + '\n');
    });
  }

  /**
   * One request on a new TCP connection to IP:PORT (80), from the local
   * address FROM if given; true when it was echoed within TIMEOUTMS.
   */
  async reach(
    ip: string,
    timeoutMs = this.timeoutMs,
    o: { port?: number; from?: string } = {},
  ): Promise<boolean> {
    const target = { ip, port: o.port ?? 80, proto: 'tcp', ...(o.from ? { from: o.from } : {}) };
    const m = await this.call({ op: 'probe', timeoutMs, targets: [target] });
    return (m.results as boolean[])[0] === true;
  }
}
