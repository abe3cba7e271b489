/**
 * A webhook endpoint on a local port that keeps every notification posted to it, so a test can
 * read the alerts a workflow sent exactly as a Slack or PagerDuty endpoint would receive them.
 */
import http from 'node:http';
import net from 'node:net';
import type { LifeboatConfig } from '../../src/config';

export interface CapturedAlert {
  severity: string;
  title: string;
  text: string;
  target?: string;
}

export interface AlertCapture {
  url: string;
  alerts: CapturedAlert[];
  /** The stack's config with its webhook pointed here, through an env secret named `variable`. */
  configFor(base: LifeboatConfig, variable: string): LifeboatConfig;
  close(): Promise<void>;
}

export async function captureAlerts(): Promise<AlertCapture> {
  const alerts: CapturedAlert[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        alerts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as CapturedAlert);
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      } catch {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('not JSON');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hook`;
  return {
    url,
    alerts,
    configFor(base, variable) {
      process.env[variable] = url;
      return { ...base, notifications: { webhook: { url: `env:${variable}`, allowInsecure: true } } } as LifeboatConfig;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
