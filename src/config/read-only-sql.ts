/**
 * Refuses, at load time, a smoke query that would write, lock or run more than one statement.
 * This is the first of three guards, for a clear message before anything runs; at run time each
 * smoke query also runs alone over the extended protocol, in a read-only transaction, as a role
 * that can only read.
 */

/** Comments, string literals and quoted identifiers become spaces: their words are not SQL. */
export function stripLiterals(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const rest = sql.slice(i);
    const dollar = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(rest);
    if (rest.startsWith('--')) {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
      out += ' ';
    } else if (rest.startsWith('/*')) {
      // Comments nest in PostgreSQL.
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < sql.length);
      out += ' ';
    } else if (dollar) {
      const end = sql.indexOf(dollar[0], i + dollar[0].length);
      i = end === -1 ? sql.length : end + dollar[0].length;
      out += " '' ";
    } else if (sql[i] === "'" || sql[i] === '"') {
      const quote = sql[i];
      const backslashes = quote === "'" && /[eE]$/.test(out) && !/[A-Za-z0-9_][eE]$/.test(out);
      i++;
      while (i < sql.length) {
        if (backslashes && sql[i] === '\\') i += 2;
        else if (sql[i] === quote && sql[i + 1] === quote) i += 2;
        else if (sql[i] === quote) break;
        else i++;
      }
      i++;
      out += quote === "'" ? " '' " : ' "" ';
    } else {
      out += sql[i];
      i++;
    }
  }
  return out;
}

const STARTS = ['SELECT', 'WITH', 'VALUES', 'TABLE'];
/**
 * Inside a query that starts with SELECT, WITH, VALUES or TABLE, only these write: data-changing
 * CTEs and SELECT ... INTO. Every other writing statement (CREATE, DROP, COPY, GRANT...) can only
 * come first, which the start rule refuses.
 */
const WRITING_WORDS = ['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'INTO'];
/** Functions that change state even inside a SELECT. */
const WRITING_FUNCTIONS = /\b(nextval|setval|set_config|pg_advisory_\w+|pg_try_advisory_\w+|lo_\w+|dblink\w*|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_switch_wal|pg_create_\w+|pg_drop_\w+|pg_current_xact_id|txid_current|pg_notify|pg_stat_reset\w*)\s*\(/i;

/** What makes `sql` more than one read-only statement, or undefined when it is one. */
export function whyNotReadOnly(sql: string): string | undefined {
  const code = stripLiterals(sql).trim().replace(/;\s*$/, '');
  if (!code) return 'it is empty';
  if (code.includes(';')) return 'it holds more than one statement (a ";" before the end)';
  const first = /^\(*\s*([A-Za-z]+)/.exec(code)?.[1]?.toUpperCase();
  if (!first || !STARTS.includes(first)) return `it starts with ${first ?? code.slice(0, 12)}, not SELECT, WITH, VALUES or TABLE`;
  const locking = /\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b/i.exec(code);
  if (locking) return `it locks rows (${locking[0].toUpperCase().replace(/\s+/g, ' ')})`;
  const words = new Set(code.toUpperCase().match(/[A-Z_][A-Z0-9_$]*/g) ?? []);
  const writing = WRITING_WORDS.find((w) => words.has(w));
  if (writing) return writing === 'INTO' ? 'it writes its result into a table (INTO)' : `it contains ${writing}`;
  const fn = WRITING_FUNCTIONS.exec(code);
  if (fn) return `it calls ${fn[1]}(), which changes state`;
  return undefined;
}
