/**
 * Benchmark reporting: every benchmark prints a table and writes
 * bench/results/NAME.json, one flat object of named numeric figures plus
 * `date` and `machine`. Figure names are stable once published.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One row of the printed table. `value` is also written to the JSON under `name`. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

/** Describes this machine in one line, for the JSON's `machine` field. */
export function machineDescription(): string {
  const c = cpus();
  return `${c.length}x ${c[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, node ${process.version}, ${hostname()}`;
}

/** Prints the figures as a table and writes bench/results/NAME.json. Returns the path written. */
export function report(name: string, figures: Figure[]): string {
  const rows = figures.map((f) => [f.name, formatNumber(f.value), f.unit, f.note ?? '']);
  const head = ['figure', 'value', 'unit', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  console.log(`\n${name}`);
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  const out: Record<string, number | string> = {
    date: new Date().toISOString(),
    machine: machineDescription(),
  };
  for (const f of figures) out[f.name] = f.value;
  const dir = join(fileURLToPath(new URL('../..', import.meta.url)), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(out, null, 2) + '\n');
  console.log(`\nwrote ${path}`);
  return path;
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toPrecision(4).replace(/\.?0+$/, '');
}

/** Median of a list of numbers (NaN for an empty list). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}
