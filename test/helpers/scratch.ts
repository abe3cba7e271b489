/**
 * Scratch space for workflow tests on the shared stack: a config derived from the example with
 * the test's own targets, and removal of everything a test wrote (the buckets are versioned, so
 * every version and delete marker goes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeleteBucketCommand, DeleteObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import YAML from 'yaml';
import { interpolateConfigText, LifeboatConfig, parseConfig } from '../../src/config';
import type { Catalog } from '../../src/catalog/catalog';

export const EXAMPLE_CONFIG = path.resolve(__dirname, '../../../lifeboat.config.yaml');

/** The example config as a plain document, changed by `edit`, then loaded and validated. */
export function derivedConfig(edit: (doc: Record<string, any>) => void): LifeboatConfig { // eslint-disable-line @typescript-eslint/no-explicit-any
  const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const examplePlan = doc.failover;
  edit(doc);
  // The example's recovery plan names the example's targets: a test that replaced them (and wrote
  // no plan of its own) has no plan, rather than one the config would rightly refuse.
  if (doc.failover === examplePlan && examplePlan) {
    const declared = new Set([...(doc.targets?.databases ?? []), ...(doc.targets?.buckets ?? [])].map((t: { name: string }) => t.name));
    const named = (examplePlan.steps as Array<{ target?: string; servesFrom?: string }>).flatMap((s) => [s.target, s.servesFrom]).filter((n): n is string => n !== undefined);
    if (named.some((n) => !declared.has(n))) delete doc.failover;
  }
  return parseConfig(YAML.stringify(doc), 'derived test config');
}

export async function purge(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let removed = 0;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix || undefined }));
    const all = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])];
    if (all.length === 0) return removed;
    for (const v of all) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId }));
      removed++;
    }
  }
}

export async function removeBucket(s3: S3Client, bucket: string): Promise<void> {
  await purge(s3, bucket, '').catch(() => undefined);
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}

/** Every version of a key or prefix (the versioned buckets keep deleted objects as versions). */
export async function versionCount(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
  return (page.Versions?.length ?? 0) + (page.DeleteMarkers?.length ?? 0);
}

/** Removes the catalog rows a test's workflows wrote. */
export async function removeCatalogRows(catalog: Catalog, workflowIds: string[]): Promise<void> {
  if (!workflowIds.length) return;
  await catalog.query('DELETE FROM verifications WHERE backup_id IN (SELECT id FROM backups WHERE workflow_id = ANY($1)) OR workflow_id = ANY($1)', [workflowIds]);
  await catalog.query('DELETE FROM backups WHERE workflow_id = ANY($1)', [workflowIds]);
  await catalog.query('DELETE FROM workflow_events WHERE workflow_id = ANY($1)', [workflowIds]);
}
