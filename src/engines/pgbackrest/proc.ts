/**
 * What /proc says about processes on this host: when a process started (to tell a live owner
 * from a reused pid) and how much work a process group has done (to tell a slow detached backup
 * from a hung one).
 */
import fs from 'node:fs';

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces): state ppid pgrp ...; undefined when the process is gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22): tells a live owner from a reused pid. */
export function processStart(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

export const ownProcessStart = () => processStart(process.pid) ?? '';

/**
 * CPU ticks plus bytes read and written by every process of a process group (a detached backup
 * leads its own): a measure of work done that only stands still when the processes do.
 * Bytes need /proc/<pid>/io, readable by the same user or root; CPU ticks are readable by anyone.
 */
export function processGroupWork(pgid: number): number {
  let total = 0;
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    // Fields: state ppid pgrp ... utime(14) stime(15); undefined when the process ended while we looked.
    const fields = statFields(entry);
    if (!fields || Number(fields[2]) !== pgid) continue;
    total += Number(fields[11]) + Number(fields[12]);
    try {
      const io = fs.readFileSync(`/proc/${entry}/io`, 'utf8');
      for (const m of io.matchAll(/^(rchar|wchar): (\d+)$/gm)) total += Number(m[2]);
    } catch {
      /* not ours to read: CPU ticks still count */
    }
  }
  return total;
}
