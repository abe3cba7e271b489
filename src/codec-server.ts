/**
 * `lifeboat codec-server`: Temporal's remote codec protocol over HTTP, so the Web UI (and
 * `temporal ... --codec-endpoint`) can show encrypted payloads decoded. POST /encode and /decode
 * take and return `{ payloads: [{ metadata: { k: base64 }, data: base64 }] }`.
 * Browsers may call it from the configured UI origin only; every request needs the bearer token,
 * as `Authorization: Bearer <token>` or as the path prefix `/t/<token>` (the dev server's UI has
 * no login, so it has no access token to pass: its codec endpoint carries the token instead).
 */
import './quiet-sdk-notice';
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { lifeboatDataConverter } from './client/temporal';
import { LifeboatConfig, resolveSecret } from './config';
import { loadLocatedConfig } from './config/locate';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** The Web UI's origin (scheme://host:port): the only one CORS lets call. */
  uiOrigin: string;
  /** Read on every request, so a rotated token applies without a restart. */
  token: () => string;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY = 8 * 1024 * 1024;
const ALLOWED_HEADERS = 'Content-Type, Authorization, X-Namespace';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function fromJson(p: JsonPayload): Payload {
  if (!p || typeof p !== 'object') throw new HttpError(400, 'each payload must be an object with metadata and data');
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (typeof v !== 'string') throw new HttpError(400, `payload metadata ${k} must be a base64 string`);
    metadata[k] = Buffer.from(v, 'base64');
  }
  if (p.data !== undefined && typeof p.data !== 'string') throw new HttpError(400, 'payload data must be a base64 string');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  const metadata = Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]));
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return expected.length > 0 && timingSafeEqual(digest(given), digest(expected));
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `the request body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function createCodecServer(options: CodecServerOptions): http.Server {
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  return http.createServer((req, res) => {
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    const handle = async () => {
      const origin = req.headers.origin;
      if (origin !== undefined) {
        // A browser on another origin gets no CORS headers, so it cannot read any answer.
        if (origin !== options.uiOrigin) throw new HttpError(403, `origin ${origin} may not use this codec server: only ${options.uiOrigin} (temporal.codecServer.uiOrigin) may`);
        res.setHeader('Access-Control-Allow-Origin', origin);
        res.setHeader('Access-Control-Allow-Credentials', 'true');
        res.setHeader('Vary', 'Origin');
      }
      let pathname = new URL(req.url ?? '/', 'http://codec').pathname;
      let pathToken: string | undefined;
      const prefixed = /^\/t\/([^/]+)(\/.*)$/.exec(pathname);
      if (prefixed) [, pathToken, pathname] = [prefixed[0], decodeURIComponent(prefixed[1]), prefixed[2]];
      if (req.method === 'OPTIONS') {
        // Preflight: browsers never send credentials with it, so it answers without the token.
        return send(204, undefined, { 'Access-Control-Allow-Methods': 'POST, OPTIONS', 'Access-Control-Allow-Headers': ALLOWED_HEADERS, 'Access-Control-Max-Age': '600' });
      }
      if (req.method === 'GET' && pathname === '/health' && !pathToken) return send(200, { ok: true });
      if (pathname !== '/encode' && pathname !== '/decode') throw new HttpError(404, `no such endpoint ${pathname}: POST /encode or /decode`);
      if (req.method !== 'POST') throw new HttpError(405, `${pathname} takes POST`);
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const given = bearer ?? pathToken;
      if (!given || !sameSecret(given, options.token())) {
        throw new HttpError(401, given ? 'the bearer token is not the codec server\'s' : 'a bearer token is required: send Authorization: Bearer <token>');
      }
      let body: { payloads?: unknown };
      try {
        body = JSON.parse(await readBody(req, limit)) as { payloads?: unknown };
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(400, 'the body is not JSON: send { "payloads": [...] }');
      }
      if (!Array.isArray(body?.payloads)) throw new HttpError(400, 'the body has no payloads array: send { "payloads": [...] }');
      const payloads = body.payloads.map((p) => fromJson(p as JsonPayload));
      let out: Payload[];
      try {
        out = pathname === '/encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
      } catch (err) {
        throw new HttpError(422, (err as Error).message);
      }
      return send(200, { payloads: out.map(toJson) });
    };
    handle().catch((err: unknown) => {
      if (err instanceof HttpError) send(err.status, { error: err.message }, err.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
      else send(500, { error: 'the codec server failed; see its log' });
      if (!(err instanceof HttpError) || err.status >= 500) process.stderr.write(`lifeboat codec-server: ${(err as Error).message}\n`);
    });
  });
}

/** The codec server the config describes (`temporal.codecServer`, with `temporal.encryption`'s keyring). */
export function codecServerFromConfig(config: LifeboatConfig): { server: http.Server; host: string; port: number; uiOrigin: string } {
  const settings = config.temporal.codecServer;
  if (!settings || !config.temporal.encryption) {
    throw new Error('temporal.codecServer and temporal.encryption are not both in the config: declare the keyring and the codec server (see docs/config.md) to run one.');
  }
  const codec = lifeboatDataConverter(config).payloadCodecs![0];
  const tokenRef = settings.token;
  resolveSecret(tokenRef); // a missing token is refused at start, not at the first request
  const server = createCodecServer({ codec, uiOrigin: settings.uiOrigin, token: () => resolveSecret(tokenRef) });
  return { server, host: settings.host, port: settings.port, uiOrigin: settings.uiOrigin };
}

/** Listens until SIGTERM or SIGINT. */
export async function runCodecServer(config: LifeboatConfig, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const { server, host, port, uiOrigin } = codecServerFromConfig(config);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'EADDRINUSE' ? `port ${port} is already in use: stop what holds it or set temporal.codecServer.port` : err.message)),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  log(`lifeboat codec-server: listening on http://${address.address}:${address.port} for the Web UI at ${uiOrigin} (namespace ${config.temporal.namespace})`);
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log('lifeboat codec-server: stopped');
}

if (require.main === module) {
  runCodecServer(loadLocatedConfig(process.env.LIFEBOAT_CONFIG).config).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`lifeboat codec-server: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
