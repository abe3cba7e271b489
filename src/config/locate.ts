import fs from 'node:fs';
import path from 'node:path';
import { LifeboatError } from '../domain/errors';
import { loadConfig } from './load';
import { LifeboatConfig } from './schema';

/**
 * Which config file applies: --config, then $LIFEBOAT_CONFIG, then ./lifeboat.config.yaml,
 * then the example beside this checkout (which describes the embedded local stack).
 */
export function locateConfig(explicit?: string): string {
  const candidates = [explicit, process.env.LIFEBOAT_CONFIG, path.resolve('lifeboat.config.yaml'), path.resolve(__dirname, '../../../lifeboat.config.yaml')];
  for (const candidate of candidates) {
    if (!candidate) continue;
    if (fs.existsSync(candidate)) return path.resolve(candidate);
    if (candidate === explicit || candidate === process.env.LIFEBOAT_CONFIG) {
      throw new LifeboatError(`the config file ${candidate} does not exist: fix the path, or omit it to use ./lifeboat.config.yaml.`, 'CONFIG_MISSING');
    }
  }
  throw new LifeboatError('no lifeboat.config.yaml found: pass --config <file> or set LIFEBOAT_CONFIG.', 'CONFIG_MISSING');
}

/**
 * The located config, with $LIFEBOAT_TASK_QUEUE (when set) overriding temporal.taskQueue: the CLI
 * and the worker both read it, so a test or a second deployment can run them on a queue of its own.
 */
export function loadLocatedConfig(explicit?: string): { file: string; config: LifeboatConfig } {
  const file = locateConfig(explicit);
  const config = loadConfig(file);
  const taskQueue = process.env.LIFEBOAT_TASK_QUEUE?.trim();
  if (taskQueue) config.temporal.taskQueue = taskQueue;
  return { file, config };
}
