/**
 * The restore drill of a configuration directory target: the chosen archive restored into a
 * scratch directory the drill makes on the directory's host (marked with its run), checked
 * against the archive's manifest, the critical files and the syntax check, then removed. Pure
 * types and names, shared by the workflow (src/workflows/directory-drill.ts), its activities and
 * the drill sweeper.
 */

/** The archive a directory drill proves, fixed at selection so a replay restores the same one. */
export interface DirectoryDrillSource {
  store: string;
  bucket: string;
  key: string;
  rtoObjectiveSeconds: number;
}

/** Inside a drill's scratch directory, beside the run mark: who made it (JSON), so the sweeper can ask Temporal about that run. */
export const DRILL_OWNER_FILE = '.lifeboat-drill-owner';

/** What DRILL_OWNER_FILE holds. */
export interface DirectoryDrillOwner {
  workflowId: string;
  runId: string;
  target: string;
  createdAt: string;
}

/** Every drill scratch directory's name starts with this (in the host's temporary directory). */
export const DIRECTORY_DRILL_PREFIX = 'lifeboat-drill-';
