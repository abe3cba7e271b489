/**
 * pgBackRest's command line, run as the database's OS user (its archive-push runs as that
 * user too, so logs and locks must stay theirs). The trusted tool is driven, not re-implemented.
 */
import { run, RunResult } from '../stack/processes';

export interface PgBackRestCliOptions {
  binary: string;
  configPath: string;
  stanza: string;
  osUser?: string;
}

/** One backup set as `pgbackrest info --output=json` reports it. */
export interface PgBackRestBackupInfo {
  label: string;
  type: 'full' | 'diff' | 'incr';
  timestamp: { start: number; stop: number };
  archive: { start: string; stop: string };
  info: { size: number; delta: number; repository: { size: number; delta: number } };
  database: { id: number; 'repo-key': number };
  error?: boolean;
  lsn?: { start: string; stop: string };
}

export interface PgBackRestStanzaInfo {
  name: string;
  status: { code: number; message: string };
  backup: PgBackRestBackupInfo[];
  archive: Array<{ id: string; min: string | null; max: string | null; database: { id: number; 'repo-key': number } }>;
  repo: Array<{ key: number; status: { code: number; message: string } }>;
  db: Array<{ id: number; 'system-id': number; version: string; 'repo-key': number }>;
}

export class PgBackRestCli {
  constructor(readonly options: PgBackRestCliOptions) {}

  async exec(command: string, args: string[] = [], opts: { check?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    const { binary, configPath, stanza, osUser } = this.options;
    return run(binary, [`--config=${configPath}`, `--stanza=${stanza}`, ...args, command], { asUser: osUser, check: opts.check, timeoutMs: opts.timeoutMs });
  }

  /** `stanza-create` is idempotent in pgBackRest: it succeeds when the stanza already matches. */
  async stanzaCreate(): Promise<void> {
    await this.exec('stanza-create', ['--log-level-console=warn']);
  }

  /** Proves the archive and repositories work end to end (it forces a WAL switch and waits for the segment). */
  async check(repo?: number): Promise<RunResult> {
    return this.exec('check', ['--log-level-console=warn', ...(repo ? [`--repo=${repo}`] : [])]);
  }

  async info(repo?: number): Promise<PgBackRestStanzaInfo | undefined> {
    const result = await this.exec('info', ['--output=json', ...(repo ? [`--repo=${repo}`] : [])]);
    const stanzas = JSON.parse(result.stdout) as PgBackRestStanzaInfo[];
    return stanzas.find((s) => s.name === this.options.stanza);
  }
}
