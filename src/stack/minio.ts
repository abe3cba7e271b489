/** One MinIO server per region ("primary", "dr"), TLS on with the local CA's certificate. */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { ComponentHealth, logFile, pidFile, StackComponent, StackContext } from './component';
import { ENV, RegionSettings } from './settings';
import { livePid, startDetached, stopPid, tailFile, waitUntil } from '../platform/processes';

export class MinioServer implements StackComponent {
  readonly name: string;
  constructor(
    private readonly ctx: StackContext,
    private readonly region: RegionSettings,
  ) {
    this.name = `minio-${region.region}`;
  }

  get endpoint(): string {
    return `https://${this.ctx.settings.host}:${this.region.port} (region ${this.region.region})`;
  }

  ports() {
    const env = this.region.region === 'primary' ? ENV.minioPrimaryPort : ENV.minioDrPort;
    return [
      { port: this.region.port, env, what: `MinIO ${this.region.region} S3 API` },
      { port: this.region.consolePort, env, what: `MinIO ${this.region.region} console (S3 port + 1)` },
    ];
  }

  private get dataDir(): string {
    return this.ctx.paths.minioData(this.region.region);
  }

  isRunning(): boolean {
    return livePid(pidFile(this.ctx, this.name), this.dataDir) !== undefined;
  }

  async start(): Promise<void> {
    const { settings, paths, tools } = this.ctx;
    const certsDir = paths.minioCerts(this.region.region);
    fs.mkdirSync(this.dataDir, { recursive: true });
    fs.mkdirSync(path.join(certsDir, 'CAs'), { recursive: true });
    fs.copyFileSync(path.join(paths.tls, 'server.crt'), path.join(certsDir, 'public.crt'));
    fs.copyFileSync(path.join(paths.tls, 'server.key'), path.join(certsDir, 'private.key'));
    fs.copyFileSync(paths.caCert, path.join(certsDir, 'CAs', 'ca.crt'));
    startDetached(
      tools.minio,
      ['server', '--quiet', '--address', `${settings.host}:${this.region.port}`, '--console-address', `${settings.host}:${this.region.consolePort}`, '--certs-dir', certsDir, this.dataDir],
      {
        logFile: logFile(this.ctx, this.name),
        pidFile: pidFile(this.ctx, this.name),
        env: {
          MINIO_ROOT_USER: settings.minio.accessKey,
          MINIO_ROOT_PASSWORD: settings.minio.secretKey,
          MINIO_SITE_REGION: this.region.region,
          MINIO_REGION: this.region.region,
          MINIO_UPDATE: 'off',
          // MinIO refuses lifecycle rules that abort incomplete multipart uploads; it purges them
          // itself. Stated here, not left to a default: a crashed upload's parts go within a day.
          MINIO_API_STALE_UPLOADS_EXPIRY: '24h',
          MINIO_API_STALE_UPLOADS_CLEANUP_INTERVAL: '6h',
          MINIO_CALLHOME_ENABLE: 'off',
        },
      },
    );
    await waitUntil(`MinIO (${this.region.region})`, async () => (await this.health()).healthy || (this.isRunning() ? 'starting' : `exited: ${tailFile(logFile(this.ctx, this.name), 3)}`), {
      timeoutMs: 60000,
      hint: `see ${logFile(this.ctx, this.name)}`,
    });
  }

  async stop(): Promise<void> {
    const pid = livePid(pidFile(this.ctx, this.name), this.dataDir);
    if (pid) await stopPid(pid);
  }

  /** MinIO's liveness endpoint, over TLS verified against the local CA. */
  health(): Promise<ComponentHealth> {
    const { host } = this.ctx.settings;
    let ca: Buffer;
    try {
      ca = fs.readFileSync(this.ctx.paths.caCert);
    } catch {
      return Promise.resolve({ healthy: false, detail: 'no local CA yet (stack never started)' });
    }
    return new Promise((resolve) => {
      const req = https.get({ host, port: this.region.port, path: '/minio/health/live', ca, timeout: 3000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? { healthy: true, detail: this.endpoint } : { healthy: false, detail: `health check answered HTTP ${res.statusCode}` });
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) => resolve({ healthy: false, detail: `no TLS answer on ${host}:${this.region.port}: ${err.message}` }));
    });
  }
}
