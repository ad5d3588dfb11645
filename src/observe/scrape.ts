/**
 * Reads a Prometheus text endpoint and parses it with
 * `parse-prometheus-text-format` (tests and status tools).
 */
import parsePrometheusTextFormat, {
  type PrometheusMetricFamily,
} from 'parse-prometheus-text-format';

export type { PrometheusMetricFamily };

/** The scrape did not answer 200 with Prometheus text. */
export class ScrapeError extends Error {
  readonly code = 'METRICS_SCRAPE_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScrapeError';
  }
}

/** Parses Prometheus text (throws ScrapeError naming the problem). */
export function parseMetricsText(text: string): PrometheusMetricFamily[] {
  try {
    return parsePrometheusTextFormat(text);
  } catch (err) {
    throw new ScrapeError(
      `not Prometheus text format: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** GETs `url` and parses the answer. */
export async function scrapeMetrics(url: string): Promise<PrometheusMetricFamily[]> {
  const res = await fetch(url).catch((err: unknown) => {
    throw new ScrapeError(
      `cannot scrape ${url}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  });
  const text = await res.text();
  if (res.status !== 200)
    throw new ScrapeError(`scrape of ${url} answered ${res.status}: ${text.slice(0, 200)}`);
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? ''))
    throw new ScrapeError(
      `scrape of ${url}: content-type ${res.headers.get('content-type')} is not Prometheus text`,
    );
  return parseMetricsText(text);
}

/**
 * The value of the first sample of `name` whose labels include `labels`
 * (counters and gauges; a histogram's `count`), or undefined.
 */
export function metricValue(
  fams: PrometheusMetricFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const fam = fams.find((f) => f.name === name);
  const m = fam?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  if (!m) return undefined;
  return Number(m.value ?? m.count);
}
