/**
 * `lifeboat stack region down|up <region>` through the real CLI: `down primary` stops exactly the
 * primary MinIO and PostgreSQL (processes gone, ports closed) and leaves the rest serving, `up`
 * brings them back healthy, both are harmless when repeated, and bad input changes nothing.
 */
import assert from 'node:assert/strict';
import { portAnswers } from '../src/platform/processes';
import { Stack, stackStatus } from '../src/stack/stack';
import { lifeboat } from './helpers/cli';
import { useStack } from './helpers/stack';

interface RegionJson {
  region: string;
  action: string;
  changed: string[];
  unchanged: string[];
  status: Array<{ name: string; running: boolean; healthy: boolean; detail: string }>;
}

describe('stack region down|up', function () {
  this.timeout(600000);
  let stack: Stack;

  before(async () => {
    stack = await useStack();
  });

  after(async () => {
    // Whatever happened above, the next suite finds both regions up.
    for (const region of ['dr', 'primary']) await lifeboat(['stack', 'region', 'up', region, '--json']);
  });

  const portsOf = (names: string[]) => stack.components.filter((c) => names.includes(c.name)).flatMap((c) => c.ports().map((p) => p.port));
  const runningNow = async () => Object.fromEntries((await stackStatus(stack)).map((s) => [s.name, s.running]));

  it('refuses a region or sub-command it does not know in one sentence, exit 2, and touches nothing', async () => {
    const before = await runningNow();
    assert.ok(Object.values(before).every(Boolean), JSON.stringify(before));
    const cases: Array<[string[], string]> = [
      [['stack', 'region', 'down', 'eu-west'], 'lifeboat: `lifeboat stack region down` takes primary or dr, not "eu-west".\n'],
      [['stack', 'region', 'up', 'PRIMARY'], 'lifeboat: `lifeboat stack region up` takes primary or dr, not "PRIMARY".\n'],
      [['stack', 'region', 'sideways', 'primary'], 'lifeboat: `lifeboat stack region` takes down or up, not "sideways".\n'],
      [['stack', 'region', 'down'], 'lifeboat: `lifeboat stack region down` needs <region>: see `lifeboat stack region down --help`.\n'],
      [['stack', 'region', 'down', 'primary', 'dr'], 'lifeboat: `lifeboat stack region down` takes one argument ("primary"), not also "dr": quote a value that has spaces.\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await lifeboat(args);
      assert.deepEqual([r.code, r.stderr, r.stdout], [2, stderr, ''], args.join(' '));
    }
    assert.deepEqual(await runningNow(), before);
  });

  it('down primary stops exactly its MinIO and PostgreSQL; up primary brings them back healthy; each is harmless twice', async () => {
    const { settings } = stack.ctx;
    const primaryRegion = ['postgres-primary', 'minio-primary'];
    const elsewhere = ['temporal', 'minio-dr', 'postgres-catalog', 'powerdns'];

    const down = await lifeboat(['stack', 'region', 'down', 'primary', '--json']);
    assert.equal(down.code, 0, down.stderr + down.stdout);
    const downJson = JSON.parse(down.stdout) as RegionJson;
    assert.deepEqual([downJson.region, downJson.action, downJson.changed, downJson.unchanged], ['primary', 'down', primaryRegion, []]);
    for (const port of portsOf(primaryRegion)) assert.equal(await portAnswers(settings.host, port), false, `port ${port} is closed`);
    for (const name of primaryRegion) assert.equal(stack.components.find((c) => c.name === name)!.isRunning(), false, `${name} has no process`);
    const status = await stackStatus(stack);
    for (const name of elsewhere) assert.ok(status.find((s) => s.name === name)!.healthy, `${name} still serves: ${JSON.stringify(status)}`);
    // The application stays up and says plainly that its database is away.
    const app = status.find((s) => s.name === 'sample-app')!;
    assert.deepEqual([app.running, app.healthy], [true, false]);
    assert.match(app.detail, new RegExp(`^GET /health answered HTTP 503: cannot connect to ${settings.dns.appDbName.replace(/\./g, '\\.')} .*ECONNREFUSED`));

    const again = await lifeboat(['stack', 'region', 'down', 'primary']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^region primary down: nothing stopped; already stopped: postgres-primary, minio-primary$/m);

    const up = await lifeboat(['stack', 'region', 'up', 'primary', '--json']);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const upJson = JSON.parse(up.stdout) as RegionJson;
    assert.deepEqual([upJson.changed, upJson.unchanged], [['minio-primary', 'postgres-primary'], []]);
    assert.ok(upJson.status.every((s) => s.healthy), JSON.stringify(upJson.status));
    for (const port of portsOf(primaryRegion)) assert.equal(await portAnswers(settings.host, port), true, `port ${port} answers`);

    const upAgain = await lifeboat(['stack', 'region', 'up', 'primary', '--json']);
    assert.equal(upAgain.code, 0, upAgain.stderr);
    assert.deepEqual((JSON.parse(upAgain.stdout) as RegionJson).unchanged, ['minio-primary', 'postgres-primary']);
  });

  it('down dr stops only the DR MinIO, and up dr starts it again', async () => {
    const { settings } = stack.ctx;
    const down = await lifeboat(['stack', 'region', 'down', 'dr', '--json']);
    assert.equal(down.code, 0, down.stderr + down.stdout);
    assert.deepEqual((JSON.parse(down.stdout) as RegionJson).changed, ['minio-dr']);
    for (const port of portsOf(['minio-dr'])) assert.equal(await portAnswers(settings.host, port), false, `port ${port} is closed`);
    const running = await runningNow();
    assert.deepEqual(Object.keys(running).filter((n) => !running[n]), ['minio-dr']);

    const up = await lifeboat(['stack', 'region', 'up', 'dr', '--json']);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const upJson = JSON.parse(up.stdout) as RegionJson;
    assert.deepEqual(upJson.changed, ['minio-dr']);
    assert.ok(upJson.status.every((s) => s.healthy), JSON.stringify(upJson.status));
  });
});
