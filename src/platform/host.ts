/**
 * Facts about the machine lifeboat runs on that more than one layer needs: where lifeboat keeps
 * its data (what `{dataDir}` in the config stands for), which OS user runs PostgreSQL, and where
 * PostgreSQL's programs are. The worker uses them on a real database host; the embedded stack
 * uses the same answers, so neither depends on the other.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Environment variables that override the answers below. */
export const HOST_ENV = {
  dataDir: 'LIFEBOAT_DATA_DIR',
  pgOsUser: 'LIFEBOAT_PG_OS_USER',
  pgBinDir: 'LIFEBOAT_PG_BIN_DIR',
} as const;

export const PROVISION_HINT = 'run `npm run provision` (scripts/provision-tools.sh) to install it';

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Root keeps the stack under /var/lib so the unprivileged Postgres user can reach it
 * (a root home directory is not traversable); everyone else under their own data home.
 */
export function defaultDataDir(): string {
  if (isRoot()) return '/var/lib/lifeboat';
  const dataHome = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'lifeboat');
}

/** lifeboat's data directory: $LIFEBOAT_DATA_DIR, else the default above. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env[HOST_ENV.dataDir] || defaultDataDir());
}

/** Who owns and runs Postgres clusters (and so pgBackRest): never root, which Postgres refuses. */
export function defaultDbOsUser(env: NodeJS.ProcessEnv = process.env): string {
  return env[HOST_ENV.pgOsUser] || (isRoot() ? 'postgres' : os.userInfo().username);
}

/** The full path of `binary` on PATH (or in the sbin directories PATH often lacks), if it is there. */
export function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin'])) {
    const candidate = path.join(dir, binary);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** The newest installed PostgreSQL server's bin directory (Debian keeps them versioned). */
export function postgresBinDir(): string {
  const fromEnv = process.env[HOST_ENV.pgBinDir];
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length > 0) return path.join(root, versions[0], 'bin');
  const initdb = onPath('initdb');
  if (initdb) return path.dirname(initdb);
  throw new Error(`the PostgreSQL server is missing: ${PROVISION_HINT} (Debian package postgresql), or set ${HOST_ENV.pgBinDir}.`);
}
