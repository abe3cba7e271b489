/**
 * The workflow bundle a worker loads, built ahead of time. Bundling src/workflows (webpack) inside
 * the worker left about 110 MiB of the worker's resident memory behind for good (the worker went
 * from ~90 MiB to ~200 MiB idle), and took several seconds of every start on a busy host. So the
 * bundle is built by `npm run build` (lib/workflow-bundle.js), or, when that file is missing or
 * older than the compiled sources, by a short-lived child process at worker start, whose memory
 * goes back to the system when it exits. The worker itself only reads the code.
 *
 * `node lib/src/workflow-bundle.js [file]` builds it (default: lib/workflow-bundle.js).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAILURE_CONVERTER_PATH } from './client/temporal';

/** Where `npm run build` puts the bundle: beside the compiled sources (lib/). */
export const PREBUILT_BUNDLE = path.resolve(__dirname, '..', 'workflow-bundle.js');
/** The compiled sources the bundle is made from (lib/src); anything newer there makes it stale. */
const COMPILED_SOURCES = __dirname;

/** Bundles src/workflows (with the failure converter the data converter names) into `file`, atomically. */
export async function writeWorkflowBundle(file: string): Promise<void> {
  // Required here, not at the top: a worker that only loads a bundle never loads webpack.
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: (m: string) => process.stderr.write(`bundle warning: ${m}\n`), error: (m: string) => process.stderr.write(`bundle error: ${m}\n`) },
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  fs.writeFileSync(partial, code);
  // A rename: a worker starting at the same moment reads the old file or the new one, never half of one.
  fs.renameSync(partial, file);
}

/** Newest modification time (ms) of the .js files under `dir`. */
function newestJs(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestJs(p));
    else if (entry.name.endsWith('.js')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** True when `bundle` exists and no compiled source under `sources` is newer (a rebuild with tsc makes it stale). */
export function bundleIsFresh(bundle: string, sources: string = COMPILED_SOURCES): boolean {
  let built: number;
  try {
    built = fs.statSync(bundle).mtimeMs;
  } catch {
    return false;
  }
  return newestJs(sources) <= built;
}

/** Builds the bundle into `file` in a child Node process and waits for it. */
function buildInChild(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`building the workflow bundle failed (exit ${code}): ${stderr.trim()}`))));
  });
}

/**
 * The bundle file a worker loads (`workflowBundle: { codePath }`): $LIFEBOAT_WORKFLOW_BUNDLE when
 * set (tests build one per run); else lib/workflow-bundle.js when it is as new as the compiled
 * sources; else one built now in a child process, into lib/ when writable (the next start reuses
 * it), otherwise into the temporary directory.
 */
export async function workflowBundlePath(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = () => undefined): Promise<string> {
  if (env.LIFEBOAT_WORKFLOW_BUNDLE) return env.LIFEBOAT_WORKFLOW_BUNDLE;
  if (bundleIsFresh(PREBUILT_BUNDLE)) return PREBUILT_BUNDLE;
  let file = PREBUILT_BUNDLE;
  try {
    fs.accessSync(path.dirname(PREBUILT_BUNDLE), fs.constants.W_OK);
  } catch {
    file = path.join(os.tmpdir(), `lifeboat-workflow-bundle-${process.pid}.js`);
    const temporary = file;
    process.once('exit', () => fs.rmSync(temporary, { force: true }));
  }
  log(`lifeboat worker: building the workflow bundle into ${file} (npm run build makes it ahead of time)\n`);
  await buildInChild(file);
  return file;
}

if (require.main === module) {
  writeWorkflowBundle(process.argv[2] ?? PREBUILT_BUNDLE).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
