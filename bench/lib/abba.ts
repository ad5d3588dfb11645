/**
 * A/B throughput comparison in ABBA rounds, as the hubble (on / off) and
 * policy (with / without) benchmarks make it: each round measures both
 * states twice, in an order that puts each state first and last once (ABBA
 * or BAAB), so a drift of the machine during the round weighs on both alike.
 * A round's figure is the ratio A / B of the two measurements' means; the
 * benchmark reports the median ratio over the rounds.
 */
import { median, percentile, type Figure } from './report.js';

/** Requests per second with keep-alive (`rps`) and with a new connection per request (`cps`). */
export interface Throughput {
  rps: number;
  cps: number;
}

/** One of the two compared states. */
export type AbState = 'a' | 'b';

/** What abbaRounds measured, one entry per round. */
export interface AbbaResult {
  /** A / B of the keep-alive rates. */
  rpsRatio: number[];
  /** A / B of the new-connection rates. */
  cpsRatio: number[];
  /** The mean of A's two measurements. */
  a: Throughput[];
  /** The mean of B's two measurements. */
  b: Throughput[];
}

/**
 * Runs ROUNDS rounds; round R measures the states in ORDER(R) (four entries,
 * each state twice) with MEASURE, which also switches the state when it
 * must. After each round LOG gets its number and both means.
 */
export async function abbaRounds(
  rounds: number,
  order: (round: number) => readonly AbState[],
  measure: (state: AbState) => Throughput | Promise<Throughput>,
  log: (round: number, a: Throughput, b: Throughput) => void,
): Promise<AbbaResult> {
  const out: AbbaResult = { rpsRatio: [], cpsRatio: [], a: [], b: [] };
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  for (let r = 0; r < rounds; r++) {
    const got = { a: [] as Throughput[], b: [] as Throughput[] };
    for (const state of order(r)) got[state].push(await measure(state));
    const [a, b] = (['a', 'b'] as const).map((s) => ({
      rps: mean(got[s].map((t) => t.rps)),
      cps: mean(got[s].map((t) => t.cps)),
    })) as [Throughput, Throughput];
    out.rpsRatio.push(a.rps / b.rps);
    out.cpsRatio.push(a.cps / b.cps);
    out.a.push(a);
    out.b.push(b);
    log(r, a, b);
  }
  return out;
}

/** ABBA in even rounds, BAAB in odd ones (each round starts with the state the last one ended with). */
export const alternatingAbba = (round: number): readonly AbState[] =>
  round % 2 === 0 ? ['a', 'b', 'b', 'a'] : ['b', 'a', 'a', 'b'];

/** The finite numbers of XS (a round with a zero rate gives NaN or Infinity). */
export const finite = (xs: number[]): number[] => xs.filter(Number.isFinite);

/**
 * Figure NAME: the median of the finite RATIOS, noted with their count, p25
 * and p75, then NOTE (load, target).
 */
export function ratioFigure(name: string, ratios: number[], note: string): Figure {
  const xs = finite(ratios);
  return {
    name,
    value: median(xs),
    unit: 'ratio',
    note: `median of ${xs.length} rounds (p25 ${percentile(xs, 25).toFixed(3)}, p75 ${percentile(xs, 75).toFixed(3)}); ${note}`,
  };
}
