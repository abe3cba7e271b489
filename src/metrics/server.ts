/**
 * The worker's Prometheus endpoint: GET /metrics answers lifeboat's own metrics (catalog and
 * pending approvals, read at most once per cache period however many scrapers ask) followed by
 * the Temporal SDK's runtime metrics, which the SDK's Rust core serves on a loopback port of its
 * own and this server fetches per scrape. One endpoint per worker: one scrape job, one port to
 * open, and both sets under the same `instance` label.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { declaredFamilies, MetricFamily, renderExposition } from './exposition';
import { METRICS } from './definitions';

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One source of families; a failing source is reported as down (lifeboat_metrics_source_up 0), the others still answer. */
export interface MetricSource {
  name: string;
  collect(): Promise<MetricFamily[]>;
  /** How long one reading serves (default the server's cacheMs); a failed reading also serves that long, so a dead source is not hammered. */
  cacheMs?: number;
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  sources: MetricSource[];
  cacheMs: number;
  /** The SDK's own endpoint (http://127.0.0.1:<port>/metrics), appended to each answer. */
  sdkMetricsUrl?: string;
  /** Told once per source that starts or stops failing (the worker logs it). */
  onSourceProblem?: (source: string, problem: string | undefined) => void;
}

export interface MetricsServer {
  url: string;
  /** The text a scrape gets now. */
  scrape(): Promise<string>;
  close(): Promise<void>;
}

async function fetchText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.text();
}

/** The SDK's families, minus any name lifeboat already declared (the exposition format forbids a name twice). */
export function withoutFamilies(text: string, taken: Set<string>): string {
  if (taken.size === 0) return text;
  const clash = [...declaredFamilies(text)].filter((name) => taken.has(name));
  if (clash.length === 0) return text;
  return text
    .split('\n')
    .filter((line) => !clash.some((name) => line.startsWith(`${name} `) || line.startsWith(`${name}{`) || line.startsWith(`# HELP ${name} `) || line.startsWith(`# TYPE ${name} `)))
    .join('\n');
}

/** Families of the same name from several sources as one (a name may be declared once per exposition). */
export function mergeFamilies(families: readonly MetricFamily[]): MetricFamily[] {
  const byName = new Map<string, MetricFamily>();
  for (const f of families) {
    const seen = byName.get(f.name);
    if (!seen) byName.set(f.name, { ...f, samples: [...(f.samples ?? [])], histograms: [...(f.histograms ?? [])] });
    else {
      seen.samples!.push(...(f.samples ?? []));
      seen.histograms!.push(...(f.histograms ?? []));
    }
  }
  return [...byName.values()];
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const cache = new Map<string, { at: number; reading: Promise<MetricFamily[]> }>();
  const problems = new Map<string, string>();

  const note = (source: string, problem: string | undefined) => {
    if (problems.get(source) === problem) return;
    if (problem === undefined) problems.delete(source);
    else problems.set(source, problem);
    options.onSourceProblem?.(source, problem);
  };

  /** The source's families, read at most once per its cache period (concurrent scrapes share one reading). */
  const read = (source: MetricSource): Promise<MetricFamily[]> => {
    const now = Date.now();
    const cached = cache.get(source.name);
    if (cached && now - cached.at < (source.cacheMs ?? options.cacheMs)) return cached.reading;
    const reading = source.collect();
    cache.set(source.name, { at: now, reading });
    return reading;
  };

  const own = async (): Promise<string> => {
    const up: Array<{ labels: { source: string }; value: number }> = [];
    const families: MetricFamily[] = [];
    for (const source of options.sources) {
      try {
        families.push(...(await read(source)));
        up.push({ labels: { source: source.name }, value: 1 });
        note(source.name, undefined);
      } catch (err) {
        up.push({ labels: { source: source.name }, value: 0 });
        note(source.name, err instanceof Error ? err.message : String(err));
      }
    }
    return renderExposition(mergeFamilies([...families, { name: METRICS.sourceUp.name, help: METRICS.sourceUp.help, type: 'gauge', samples: up }]));
  };

  const scrape = async (): Promise<string> => {
    const mine = await own();
    if (!options.sdkMetricsUrl) return mine;
    let sdk: string;
    let sdkUp = 1;
    try {
      sdk = withoutFamilies(await fetchText(options.sdkMetricsUrl, 2000), declaredFamilies(mine));
      note('temporal-sdk', undefined);
    } catch (err) {
      sdk = '';
      sdkUp = 0;
      note('temporal-sdk', err instanceof Error ? err.message : String(err));
    }
    // lifeboat_metrics_source_up already closed its family: the SDK's line joins it there.
    const line = `${METRICS.sourceUp.name}{source="temporal-sdk"} ${sdkUp}\n`;
    const marker = `# TYPE ${METRICS.sourceUp.name} gauge\n`;
    const at = mine.indexOf(marker);
    const joined = at < 0 ? mine : mine.slice(0, at + marker.length) + line + mine.slice(at + marker.length);
    return joined + (sdk.endsWith('\n') || sdk === '' ? sdk : `${sdk}\n`);
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('lifeboat serves its metrics at GET /metrics\n');
      return;
    }
    scrape().then(
      (text) => res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`lifeboat metrics: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL'
          ? new Error(`the metrics endpoint cannot listen on ${options.host}:${options.port} (${err.code}): free that port, or set another with metrics.port or LIFEBOAT_METRICS_PORT (and metrics.host for the address).`)
          : err,
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/metrics`,
    scrape,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Prometheus keeps its connection open between scrapes: an idle one must not hold the shutdown.
        server.closeIdleConnections();
      }),
  };
}
