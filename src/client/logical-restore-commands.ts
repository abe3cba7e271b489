/**
 * `lifeboat restore <target> --logical <backup>`: a logical dump into a new database (or chosen
 * tables into a new schema), behind the restore gate; and `lifeboat decrypt`, which reads the
 * encryption format with nothing but keys (no Temporal, no catalog, no config file).
 */
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { findDatabaseTarget, LifeboatConfig, requesterProblem } from '../config';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import type { SecretRef } from '../config/fields';
import { LogicalRestoreInput } from '../domain/logical-restore';
import { createDecryptStream, EncryptedHeader, keyringOf, loadEncryptionKey } from '../engines/crypto-stream';
import { createAutoDecompressStream } from '../engines/compression';
import { describeFailure } from '../workflows/failure';
import { checkLength, UsageError } from './args';
import { line } from './output';
import { CommandContext, identity, printRestoreEnded, printRestoreStarted } from './recovery-commands';
import { waitPastValidation } from './restore-start';

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;
const PG_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const BACKUP_REF = /^(latest|[0-9]{1,19}|[A-Za-z0-9][A-Za-z0-9._-]{0,199})$/;

export interface LogicalRestoreOptions {
  target: string;
  backup: string;
  tables?: string;
  intoDatabase?: string;
  intoSchema?: string;
  fromRegion?: string;
  reason: string;
  as?: string;
  incident?: string;
  keep: boolean;
  workflowId?: string;
}

/** Everything the CLI can refuse before connecting; the workflow checks the rest before anything is made. */
export function prepareLogicalRestore(config: LifeboatConfig, o: LogicalRestoreOptions): { input: LogicalRestoreInput; workflowId: string } {
  const target = findDatabaseTarget(config, o.target);
  if (!target.logicalBackup) throw new UsageError(`target ${target.name} has no logicalBackup section in the config, so it has no logical dumps: restore it with --to <time> instead.`);
  if (!BACKUP_REF.test(o.backup)) throw new UsageError(`--logical takes a backup id or name from \`lifeboat backups list ${target.name}\`, or latest, not "${o.backup}".`);
  if (o.fromRegion !== undefined && o.fromRegion !== 'primary' && o.fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${o.fromRegion}".`);
  if (o.intoDatabase !== undefined && o.intoSchema !== undefined) throw new UsageError('give --into-database or --into-schema, not both: a restore goes into one new place.');
  const tables = o.tables === undefined ? undefined : o.tables.split(',').map((t) => t.trim());
  if (tables) {
    const bad = tables.find((t) => !TABLE_NAME.test(t));
    if (bad !== undefined) throw new UsageError(`--tables takes table names like orders or public.orders separated by commas, and "${bad}" is not one.`);
  }
  for (const [option, name] of [['--into-database', o.intoDatabase], ['--into-schema', o.intoSchema]] as const) {
    if (name !== undefined && !PG_NAME.test(name)) throw new UsageError(`${option} "${name}" is not a name lifeboat creates: use 1 to 63 lowercase letters, digits and underscores, starting with a letter or underscore.`);
  }
  if (o.intoSchema !== undefined && !tables) throw new UsageError('--into-schema restores chosen tables next to the live ones: name them with --tables.');
  if (!o.reason.trim()) throw new UsageError('a restore needs --reason, for the record.');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  checkLength('--incident', o.incident, MAX_INCIDENT_ID_CHARS, 'give the ticket id, not its text');
  const requestedBy = identity(o.as);
  const unknownRequester = requesterProblem(config, [target.environment], requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  const workflowId = o.workflowId ?? `restore-logical-${o.target}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  return {
    workflowId,
    input: {
      target: target.name,
      backup: o.backup,
      ...(tables ? { tables } : {}),
      ...(o.intoDatabase !== undefined ? { intoDatabase: o.intoDatabase } : {}),
      ...(o.intoSchema !== undefined ? { intoSchema: o.intoSchema } : {}),
      ...(o.fromRegion ? { fromRegion: o.fromRegion as 'primary' | 'dr' } : {}),
      requestedBy,
      reason: o.reason,
      ...(o.incident?.trim() ? { incidentId: o.incident.trim() } : {}),
      ...(o.keep ? { keep: true } : {}),
    },
  };
}

/**
 * Starts the workflow and waits for validation, so a refusal (unknown backup or table, an
 * existing database or schema) is one sentence here, exit 2, with nothing made.
 */
export async function logicalRestoreCommand(ctx: CommandContext, prepared: { input: LogicalRestoreInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const handle = await ctx.client.workflow.start('logicalRestore', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `restore logical backup ${input.backup} of ${input.target}${input.tables ? ` (${input.tables.join(', ')})` : ''}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}${input.incidentId ? ` (incident ${input.incidentId})` : ''}.`,
  });
  // A refusal while validating is one sentence and exit 2; a gate rejected at once is exit 1 like any restore's.
  const started = await waitPastValidation(handle);
  if (started.state === 'ended') return printRestoreEnded(ctx, workflowId, started.result, started.exitCode);
  return printRestoreStarted(ctx, workflowId, started.status);
}

export interface DecryptOptions {
  /** Comma-separated key references (file:/path, env:NAME); any of them may be the one the object needs. */
  key?: string;
  in?: string;
  out?: string;
  /** With backup: the object must be bound to this target and backup, or it is refused. */
  target?: string;
  backup?: string;
  /** Print the keys' ids instead of decrypting. */
  keyId?: boolean;
  /** Also decompress a logical dump (zstd or gzip, as its header declares): the output is the pg_dump archive. */
  decompress?: boolean;
}

/**
 * `lifeboat decrypt`: the container (any version lifeboat wrote) from --in or stdin to --out or
 * stdout, authenticated chunk by chunk. The output of a logical dump is zstd (dumps written
 * before zstd: gzip) of a pg_dump archive, as the header's binding declares and the note on
 * stderr says: `lifeboat decrypt ... | zstd -d | pg_restore ...`, or `--decompress` for the
 * archive itself. Needs only the keys.
 */
export async function decryptCommand(o: DecryptOptions): Promise<number> {
  if (!o.key?.trim()) throw new UsageError('`lifeboat decrypt` needs --key <ref>: file:/path/to/key or env:NAME (several, comma-separated, for a keyring).');
  if ((o.target === undefined) !== (o.backup === undefined)) throw new UsageError('--target and --backup go together: they name the backup the object must be.');
  const refs = o.key.split(',').map((r) => r.trim()).filter(Boolean);
  for (const ref of refs) if (!/^(file:.+|env:[A-Za-z_][A-Za-z0-9_]*)$/.test(ref)) throw new UsageError(`--key takes file:/path or env:NAME references, and "${ref}" is neither.`);
  const keys = refs.map((ref) => {
    try {
      return loadEncryptionKey(ref as SecretRef);
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  });
  if (o.keyId) {
    for (let i = 0; i < refs.length; i++) line(`${keys[i].keyId}  ${refs[i]}`);
    return 0;
  }
  if (o.in !== undefined && !fs.existsSync(o.in)) throw new UsageError(`--in ${o.in} does not exist: give the path of an encrypted object (or leave --in out to read stdin).`);
  if (o.out !== undefined && fs.existsSync(o.out)) throw new UsageError(`--out ${o.out} exists already: lifeboat decrypt does not overwrite; give a new path.`);
  const input: Readable = o.in !== undefined ? fs.createReadStream(o.in) : process.stdin;
  const temp = o.out !== undefined ? `${o.out}.partial-${process.pid}` : undefined;
  const output: Writable = temp !== undefined ? fs.createWriteStream(temp, { flags: 'wx' }) : process.stdout;
  let header: EncryptedHeader | undefined;
  try {
    await pipeline(
      input,
      createDecryptStream(keyringOf(keys[0], keys.slice(1)), {
        ...(o.target !== undefined && o.backup !== undefined ? { expect: { target: o.target, backupName: o.backup } } : {}),
        onHeader: (h) => (header = h),
      }),
      ...(o.decompress ? [createAutoDecompressStream({ declared: () => header?.compression })] : []),
      output,
    );
  } catch (err) {
    // Only authenticated bytes were written, but a partial output is not the object: it goes.
    if (temp !== undefined) fs.rmSync(temp, { force: true });
    // Refused at the header (wrong object, key or binding): nothing was written, the person's input is wrong.
    if (err instanceof LifeboatError && ['NOT_A_BACKUP', 'UNSUPPORTED_FORMAT', 'WRONG_KEY', 'BACKUP_MISMATCH'].includes(err.code) && !header) throw new UsageError(err.message);
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError(`Decrypting failed (${describeFailure(err)}): check --in and --out.`, 'DECRYPT_FAILED');
  }
  if (temp !== undefined && o.out !== undefined) fs.renameSync(temp, o.out);
  if (header) {
    const bound = header.binding ? `bound to ${header.binding.split('\n').join(', ')}` : 'no binding';
    // Dumps before zstd printed no compression note (gzip was the only one): they still print none.
    const packed = o.decompress && header.compression ? `; ${header.compression} decompressed` : header.compression === 'zstd' ? '; the plaintext is zstd: pipe it through `zstd -d`, or use --decompress' : '';
    process.stderr.write(`decrypted: lifeboat-enc-v${header.version}, key ${header.keyId}, ${bound}${packed}\n`);
  }
  return 0;
}
