/**
 * TLS to PostgreSQL, one policy for both kinds of client lifeboat has: node-postgres (the
 * catalog, checks, verifications) and libpq programs (pg_dump, pg_restore, psql), which read
 * PGSSLMODE and PGSSLROOTCERT. The modes are libpq's, minus `allow` and `prefer`: those fall back
 * to plain text when the server has no TLS, which node-postgres cannot do and lifeboat should not.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { ConnectionOptions } from 'node:tls';

export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface PgTls {
  sslMode: SslMode;
  /** PEM file of the CA(s) the server certificate must chain to; default: the system's CAs. */
  sslRootCert?: string;
}

/**
 * node-postgres's `ssl` option for a connection to `host`:
 * - disable: plain text;
 * - require: encrypted, the certificate not checked (libpq's require without a root cert);
 * - verify-ca: the certificate must chain to the CA, any name;
 * - verify-full: it must also be issued for `host` (a DNS name or an IP address in its SAN).
 */
export function pgSslOption(settings: PgTls | undefined, host: string): false | ConnectionOptions {
  if (!settings || settings.sslMode === 'disable') return false;
  if (settings.sslMode === 'require') return { rejectUnauthorized: false };
  const options: ConnectionOptions =
    settings.sslMode === 'verify-ca'
      ? { rejectUnauthorized: true, checkServerIdentity: () => undefined }
      : // node-postgres sets servername (SNI) only for DNS names; the identity is checked against
        // the host lifeboat dialled, IP or name, instead of Node's fallback of "localhost".
        { rejectUnauthorized: true, ...(net.isIP(host) === 0 ? { servername: host } : {}), checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert) };
  const file = settings.sslRootCert;
  if (file) {
    // Read when node-postgres opens the TLS session (it copies these options then), not when
    // the client or pool is made: a renewed CA needs no restart. An unreadable file leaves the
    // system's CAs, which refuse a private CA's certificate: the connection fails, it never
    // goes unverified.
    Object.defineProperty(options, 'ca', { enumerable: true, get: () => readCa(file) });
  }
  return options;
}

function readCa(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The same policy for a libpq program, as environment variables. */
export function libpqTlsEnv(settings: PgTls | undefined): Record<string, string> {
  if (!settings) return {};
  return { PGSSLMODE: settings.sslMode, ...(settings.sslRootCert && settings.sslMode !== 'disable' ? { PGSSLROOTCERT: settings.sslRootCert } : {}) };
}
