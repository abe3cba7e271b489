#!/bin/sh
# Makes a local CA and one server certificate, once, into the shared `tls` volume.
# The file names are the ones src/stack/tls.ts writes for the embedded stack (ca.crt, ca.key,
# server.crt, server.key); minio/ holds the layout MinIO's --certs-dir expects.
# Clients (pgBackRest, the worker's S3 client) trust ca.crt explicitly: never "insecure" mode.
set -eu
dir=${TLS_DIR:-/var/lib/lifeboat/tls}
host=${LIFEBOAT_HOST:-127.0.0.1}

mkdir -p "$dir/minio/CAs"
if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/server.crt" ] || [ ! -s "$dir/server.key" ]; then
  # Names clients use: loopback inside the shared namespace, plus the published address when it differs.
  sans="DNS:localhost,IP:127.0.0.1,IP:::1"
  case $host in
    127.0.0.1 | localhost | 0.0.0.0 | "") ;;
    *:*) sans="$sans,IP:$host" ;;
    *[!0-9.]*) sans="$sans,DNS:$host" ;;
    *) sans="$sans,IP:$host" ;;
  esac
  work=$(mktemp -d)
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=lifeboat local CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" -out "$work/server.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$sans" >"$work/server.ext"
  openssl x509 -req -in "$work/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 3650 -extfile "$work/server.ext" -out "$dir/server.crt"
  rm -rf "$work"
  echo "make-certs: new local CA and server certificate for $sans"
else
  echo "make-certs: keeping the existing certificates"
fi

cp "$dir/server.crt" "$dir/minio/public.crt"
cp "$dir/server.key" "$dir/minio/private.key"
cp "$dir/ca.crt" "$dir/minio/CAs/ca.crt"
# Postgres (uid 999 in deploy/postgres) serves the same certificate and must own its key.
mkdir -p "$dir/postgres"
cp "$dir/server.crt" "$dir/postgres/server.crt"
cp "$dir/server.key" "$dir/postgres/server.key"
chown 999:999 "$dir/postgres/server.key"
chmod 0755 "$dir/postgres"
chmod 0644 "$dir/postgres/server.crt"
chmod 0600 "$dir/postgres/server.key"
# Keys stay root-only (MinIO runs as root); the CA is world-readable for the postgres and worker users.
chmod 0755 "$dir" "$dir/minio" "$dir/minio/CAs"
chmod 0600 "$dir/ca.key" "$dir/server.key" "$dir/minio/private.key"
chmod 0644 "$dir/ca.crt" "$dir/server.crt" "$dir/minio/public.crt" "$dir/minio/CAs/ca.crt"
