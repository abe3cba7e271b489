/** Output helpers shared by the CLI's commands: JSON for scripts, short lines for people. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function line(text = ''): void {
  process.stdout.write(text + '\n');
}

/** A progress line that rewrites itself on a terminal and prints plainly otherwise. */
export function progress(text: string): void {
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${text}`);
  else process.stdout.write(text + '\n');
}

export function endProgress(): void {
  if (process.stdout.isTTY) process.stdout.write('\n');
}

export function uiLink(uiBase: string, namespace: string, workflowId: string): string {
  return `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/**
 * Rows as aligned columns, each as wide as its widest cell (a 60-character name widens its column
 * instead of pushing the rest out of line); the last column is not padded, nor is trailing space kept.
 */
export function formatTable(rows: ReadonlyArray<readonly string[]>, gap = 2): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
      .join(' '.repeat(gap))
      .trimEnd(),
  );
}
