/**
 * A local certificate authority and one server certificate for 127.0.0.1/localhost, made once.
 * pgBackRest speaks S3 only over TLS, so both MinIO servers serve this certificate and every
 * client (pgBackRest, the Node S3 client) trusts the CA explicitly, never "insecure" mode.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../platform/processes';

export async function ensureLocalCertificates(openssl: string, tlsDir: string, host: string): Promise<{ caCert: string; serverCert: string; serverKey: string }> {
  fs.mkdirSync(tlsDir, { recursive: true, mode: 0o755 });
  const caKey = path.join(tlsDir, 'ca.key');
  const caCert = path.join(tlsDir, 'ca.crt');
  const serverKey = path.join(tlsDir, 'server.key');
  const serverCert = path.join(tlsDir, 'server.crt');
  if (fs.existsSync(caCert) && fs.existsSync(serverCert) && fs.existsSync(serverKey)) return { caCert, serverCert, serverKey };

  const csr = path.join(tlsDir, 'server.csr');
  const ext = path.join(tlsDir, 'server.ext');
  await run(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=lifeboat local CA', '-keyout', caKey, '-out', caCert]);
  await run(openssl, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', serverKey, '-out', csr]);
  const altNames = ['DNS:localhost', 'IP:127.0.0.1', host !== '127.0.0.1' && /^[\d.]+$/.test(host) ? `IP:${host}` : host !== 'localhost' && host !== '127.0.0.1' ? `DNS:${host}` : undefined]
    .filter(Boolean)
    .join(',');
  fs.writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${altNames}\n`);
  await run(openssl, ['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '3650', '-extfile', ext, '-out', serverCert]);
  fs.rmSync(csr);
  fs.chmodSync(caKey, 0o600);
  // Readable by the unprivileged Postgres user, whose pgBackRest must verify MinIO's certificate.
  fs.chmodSync(caCert, 0o644);
  fs.chmodSync(serverKey, 0o600);
  return { caCert, serverCert, serverKey };
}

/**
 * A client certificate signed by the local CA in `tlsDir` (made by ensureLocalCertificates), for
 * mutual TLS: `<name>.crt` and `<name>.key` (mode 600) in `outDir`. The subject's CN is `name`.
 */
export async function issueClientCertificate(openssl: string, tlsDir: string, outDir: string, name: string): Promise<{ cert: string; key: string }> {
  fs.mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const key = path.join(outDir, `${name}.key`);
  const cert = path.join(outDir, `${name}.crt`);
  const csr = path.join(outDir, `${name}.csr`);
  const ext = path.join(outDir, `${name}.ext`);
  await run(openssl, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', key, '-out', csr]);
  fs.writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  await run(openssl, ['x509', '-req', '-in', csr, '-CA', path.join(tlsDir, 'ca.crt'), '-CAkey', path.join(tlsDir, 'ca.key'), '-CAcreateserial', '-days', '30', '-extfile', ext, '-out', cert]);
  fs.rmSync(csr);
  fs.rmSync(ext);
  fs.chmodSync(key, 0o600);
  return { cert, key };
}
