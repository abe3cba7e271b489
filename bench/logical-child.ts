/**
 * One logical backup of the local stack's `app` database through src/engines/logical-dump.ts,
 * alone in its own process so its memory can be measured: bench/index.ts starts it, samples
 * /proc/<pid>/status while it runs, and reads the JSON line it prints at the end (wall time,
 * sizes, Node's maxRSS and the kernel's VmHWM high-water mark of this process).
 *
 * Input (env): LIFEBOAT_BENCH_DUMP_PREFIX, LIFEBOAT_BENCH_DUMP_NAME, LIFEBOAT_BENCH_KEY_FILE.
 */
import '../src/quiet-sdk-notice';
import fs from 'node:fs';
import { LogicalDumpEngine } from '../src/engines/logical-dump';
import { loadStackSettings } from '../src/stack/settings';
import { s3ClientFor } from '../src/stack/stack';

function vmHwmKb(): number | undefined {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : undefined;
}

async function main(): Promise<void> {
  const settings = loadStackSettings();
  const s3 = s3ClientFor(settings, settings.minio.primary);
  const baselineRssKb = Math.round(process.memoryUsage().rss / 1024);
  try {
    const engine = new LogicalDumpEngine({
      store: { s3, bucket: settings.minio.primary.backupBucket, prefix: process.env.LIFEBOAT_BENCH_DUMP_PREFIX, name: 'primary' },
      encryptionKey: `file:${process.env.LIFEBOAT_BENCH_KEY_FILE}`,
    });
    const started = Date.now();
    const result = await engine.backup({
      target: 'app',
      backupName: process.env.LIFEBOAT_BENCH_DUMP_NAME ?? 'bench',
      source: { host: settings.host, port: settings.postgres.primaryPort, database: settings.postgres.appDatabase, user: settings.postgres.superuser },
    });
    const wallMs = Date.now() - started;
    process.stdout.write(
      JSON.stringify({ wallMs, dumpBytes: result.dumpBytes, storedBytes: result.sizeBytes, key: result.key, baselineRssKb, maxRssKb: process.resourceUsage().maxRSS, vmHwmKb: vmHwmKb() }) + '\n',
    );
  } finally {
    s3.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`logical backup failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
