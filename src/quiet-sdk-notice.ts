/**
 * The AWS SDK prints a multi-line notice on Node 20 that future SDK releases will need Node 22.
 * It is advice for upgrades (README notes it), not an error, and at 3 a.m. it reads like one:
 * drop exactly that notice, keep every other warning. Import this first in each entry point.
 */
const original = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning?.message;
  if (typeof text === 'string' && text.startsWith('NodeVersionSupportWarning')) return;
  original(warning, ...rest);
}) as typeof process.emitWarning;
