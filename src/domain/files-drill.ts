/**
 * The restore drill of a bucket target: a files backup set restored into a scratch bucket of the
 * drill's own, checked against the set's manifest, and the bucket removed. Pure types and rules,
 * shared by the workflow (src/workflows/files-drill.ts) and its activities.
 */

/** Where the drilled set lives in the region drilled, and how the drill checks it (fixed at selection, so a replay checks the same way). */
export interface FilesDrillSource {
  /** The object store (config `objectStores`) holding the set; the scratch bucket is made in the same store. */
  store: string;
  bucket: string;
  /** Root prefix of the target's sets in that bucket. */
  root: string;
  /** The set's timestamp (its id). */
  timestamp: string;
  sourceBucket: string;
  /** Objects and bytes the set restores, as the catalog recorded them (the manifest is the authority). */
  objects?: number;
  bytes?: number;
  rtoObjectiveSeconds: number;
  /** Every object is hashed when the set holds at most this many; above it, `sample` of them. */
  hashAllUpTo: number;
  sample: number;
}

/** The scratch bucket a files drill restores into, and who owns it. */
export interface DrillBucket {
  store: string;
  bucket: string;
  /** True when an earlier attempt of this run had made it already. */
  adopted: boolean;
}

/** What the restore into the scratch bucket came to. */
export interface FilesDrillRestore {
  objects: number;
  bytes: number;
  /** Objects deleted from the source before the backup: listed in the manifest, not restored. */
  skippedDeleted: number;
}

/** The checks of a files drill, each its own phase (`validating-<check>`) and its own line in the report. */
export const FILES_DRILL_CHECKS = ['count', 'content', 'metadata'] as const;
export type FilesDrillCheck = (typeof FILES_DRILL_CHECKS)[number];

/** How each check proves what it proves, in words for the report. */
export const FILES_DRILL_METHODS: Record<FilesDrillCheck, string> = {
  count: 'every object of the scratch bucket listed: keys, count and bytes against the backup manifest',
  content: 'restored objects read back and hashed: SHA-256 and size against those the manifest recorded at backup time',
  metadata: "restored objects' content type, user metadata, size and (single-part) ETag against the manifest",
};

/** The drill's scratch bucket: `drill-<workflow id>`, a valid S3 bucket name, never a production bucket's. */
export function drillBucketName(workflowId: string): string {
  const cleaned = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  const name = cleaned.startsWith('drill-') ? cleaned : `drill-${cleaned}`;
  return name.slice(0, 63).replace(/-+$/, '');
}

/** Tags on a drill's scratch bucket: what made it, so only that run (or the drill sweeper, once the run is closed) removes it. */
export const DRILL_BUCKET_TAGS = {
  drill: 'lifeboat-drill',
  workflowId: 'lifeboat-owner-workflow',
  runId: 'lifeboat-owner-run',
  target: 'lifeboat-target',
  createdAt: 'lifeboat-created-at',
} as const;
