/**
 * pgBackRest's command line, run as the database's OS user (its archive-push runs as that
 * user too, so logs and locks must stay theirs). The trusted tool is driven, not re-implemented.
 * This module owns how a pgBackRest command line is put together (argv) and quoted for sh (shq),
 * and the short commands run and awaited in place; the engine's detached backups and restores
 * take their command lines from here too.
 */
import { run, RunResult } from '../../platform/processes';

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

  /** The program and arguments of a pgBackRest command: options before the command, positional arguments after it. */
  argv(command: string, options: string[] = [], positional: string[] = []): [string, string[]] {
    const { binary, configPath, stanza } = this.options;
    return [binary, [`--config=${configPath}`, `--stanza=${stanza}`, ...options, command, ...positional]];
  }

  async exec(command: string, args: string[] = [], opts: { check?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    return run(...this.argv(command, args), { asUser: this.options.osUser, check: opts.check, timeoutMs: opts.timeoutMs });
  }

  /** `stanza-create` is idempotent in pgBackRest: it succeeds when the stanza already matches. */
  async stanzaCreate(): Promise<void> {
    await this.exec('stanza-create', ['--log-level-console=warn']);
  }

  /** Proves the archive and every repository work end to end (it forces a WAL switch and waits for the segment). */
  async check(): Promise<RunResult> {
    return this.exec('check', ['--log-level-console=warn']);
  }

  /**
   * `check` covers all repositories in one run (it takes no --repo); this reports each one:
   * ok when its WAL segment was archived, otherwise the error pgBackRest gave.
   */
  async checkEachRepo(repos: number[]): Promise<Array<{ repo: number; ok: boolean; detail: string }>> {
    const result = await this.exec('check', ['--log-level-console=info'], { check: false });
    const output = `${result.stdout}\n${result.stderr}`;
    return repos.map((repo) => {
      const archived = output.match(new RegExp(`WAL segment (\\S+) successfully archived to .* on repo${repo}\\b`));
      if (archived) return { repo, ok: true, detail: `WAL segment ${archived[1]} archived and found in repo${repo}` };
      const error = output.split('\n').find((line) => /ERROR: \[\d+\]/.test(line));
      return { repo, ok: false, detail: error ? error.replace(/^.*?ERROR: /, 'pgBackRest error ') : `pgbackrest check exited with ${result.code} without archiving to repo${repo}` };
    });
  }

  /**
   * `ioTimeoutSeconds` bounds each of pgBackRest's network waits: it retries a repository that
   * refuses connections until its io-timeout (60 s by default) for each file info reads, so an
   * object store that is down costs minutes without it.
   */
  async info(repo?: number, opts: { ioTimeoutSeconds?: number } = {}): Promise<PgBackRestStanzaInfo | undefined> {
    const result = await this.exec('info', ['--output=json', ...(repo ? [`--repo=${repo}`] : []), ...(opts.ioTimeoutSeconds ? [`--io-timeout=${opts.ioTimeoutSeconds}`] : [])]);
    const stanzas = JSON.parse(result.stdout) as PgBackRestStanzaInfo[];
    return stanzas.find((s) => s.name === this.options.stanza);
  }
}

/** Quotes a string for POSIX sh. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A command line as one sh word list. */
export function shellCommand(argv: string[]): string {
  return argv.map(shq).join(' ');
}
