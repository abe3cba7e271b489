/**
 * What pgBackRest and PostgreSQL say when they fail, turned into what a person can act on:
 * classifyPgBackRestError maps a failed command to one LifeboatError sentence with its code
 * (busy lock, missing stanza, bad configuration, ...), and lastErrorLine picks the line of a
 * pgBackRest or PostgreSQL log that says why.
 */
import { describeError, LifeboatError } from '../../domain/errors';

/** The last pgBackRest or PostgreSQL error line in some output. */
export function lastErrorLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/\bERROR: \[\d+\]/.test(lines[i]) || /\b(FATAL|PANIC):/.test(lines[i])) return lines[i].replace(/^.*?\b(ERROR|FATAL|PANIC): /, '$1: ');
  }
  return undefined;
}

/** Turns a pgBackRest failure into a one-sentence LifeboatError that says what to do. */
export function classifyPgBackRestError(err: unknown, doing: string): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const text = describeError(err);
  const line = lastErrorLine(text) ?? text.split('\n').filter(Boolean).slice(-1)[0] ?? text;
  const code = /\[(\d+)\]/.exec(line)?.[1];
  const said = line.replace(/\s+/g, ' ').replace(/[.\s]+$/, '');
  if (code === '050' || /unable to acquire lock/.test(text)) {
    return new LifeboatError(`pgBackRest is busy with another backup or expire of this stanza while ${doing}; lifeboat will retry when it finishes.`, 'PGBACKREST_BUSY', false);
  }
  if (/is not installed/.test(text)) return new LifeboatError(describeError(err), 'TOOL_MISSING');
  if (code === '075' && /cannot be expired until another full backup/.test(text)) {
    return new LifeboatError(`pgBackRest refused ${doing} because it is the only full backup in that repository (${said}); take another full backup first.`, 'LAST_FULL_BACKUP');
  }
  if (/no backup set found|unable to find backup set/.test(text)) {
    return new LifeboatError(`pgBackRest found no backup to restore from while ${doing} (${said}); take a backup into that repository first or choose a later restore point.`, 'NO_BACKUP_TO_RESTORE');
  }
  if (/stanza-create|missing stanza|does not exist.*stanza|archive\.info|backup\.info/.test(text) && /missing|does not exist|unable to (open|load)/.test(text)) {
    return new LifeboatError(`pgBackRest has no stanza in that repository while ${doing} (${said}); run \`pgbackrest stanza-create\` for the stanza and try again.`, 'STANZA_MISSING');
  }
  if (code && ['031', '032', '033', '034', '035', '036', '037', '042', '047', '091'].includes(code)) {
    return new LifeboatError(`pgBackRest rejected its configuration while ${doing} (${said}); fix the pgBackRest configuration or the lifeboat config and try again.`, 'PGBACKREST_CONFIG');
  }
  if (/permission denied/i.test(text)) {
    return new LifeboatError(`Permission was denied while ${doing} (${said}); run the worker as root or as the database's OS user and check the ownership of the pgBackRest and data directories.`, 'PERMISSION_DENIED');
  }
  return new LifeboatError(`pgBackRest failed while ${doing} (${said}); lifeboat will retry, and if it keeps failing check the pgBackRest log.`, 'PGBACKREST_FAILED', false);
}
