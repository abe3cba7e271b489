/* eslint-disable @typescript-eslint/no-require-imports -- mocha loads its config with require() */
// `npm run test:unit`: every test file that needs no server, found by what it imports, so a
// new unit test is picked up without editing a list. A test file needs a server when it
// imports (directly or through another file under test/) a helper that starts one:
// test/helpers/stack.ts (the embedded stack) or test/helpers/temporal.ts (its Temporal server).
// `npm test` (.mocharc.json) still runs every file.
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const TEST_DIR = path.join(__dirname, 'test');
const SERVER_HELPERS = ['helpers/stack.ts', 'helpers/temporal.ts'].map((f) => path.join(TEST_DIR, f));

function testFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'histories' ? [] : testFiles(full);
    return e.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** The files under test/ that `file` imports (src/ never starts a server by being imported). */
function localImports(file) {
  const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map((i) => i.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => path.resolve(path.dirname(file), name))
    .map((target) => [`${target}.ts`, path.join(target, 'index.ts')].find((f) => fs.existsSync(f)))
    .filter((f) => f && f.startsWith(TEST_DIR + path.sep));
}

function needsServer(file, seen = new Set()) {
  if (SERVER_HELPERS.includes(file)) return true;
  if (seen.has(file)) return false;
  seen.add(file);
  return localImports(file).some((f) => needsServer(f, seen));
}

const unitTests = testFiles(TEST_DIR)
  .filter((file) => !needsServer(file))
  .map((file) => path.join('lib', path.relative(__dirname, file)).replace(/\.ts$/, '.js'));

module.exports = {
  ...JSON.parse(fs.readFileSync(path.join(__dirname, '.mocharc.json'), 'utf8')),
  spec: unitTests,
  timeout: 60000,
};
