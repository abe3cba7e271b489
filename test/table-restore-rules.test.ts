/**
 * The table restore's rules without a server: which names are taken, where each table goes, the
 * sentences of refusals, the ownership comment on the new schema, and the CLI's checks of what
 * was typed (exit 2 before connecting anywhere).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { prepareTableRestore } from '../src/client/recovery-commands';
import { loadConfig } from '../src/config';
import { describeCopy, intoSchemaProblem, parseSchemaOwner, planTableCopies, schemaOwnerComment } from '../src/domain/table-restore';
import { CLI, runNode } from './helpers/cli';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

describe('table restore rules', () => {
  it('plans each table into the new schema, public when no schema is named', () => {
    const planned = planTableCopies(['orders', ' sales.order_items '], 'recovered_inc42');
    assert.ok(planned.ok);
    assert.deepEqual(
      planned.plan.map((p) => [p.source, p.into]),
      [
        ['public.orders', 'recovered_inc42.orders'],
        ['sales.order_items', 'recovered_inc42.order_items'],
      ],
    );
    assert.equal(describeCopy({ ...planned.plan[0], liveRows: 0 }), 'public.orders -> recovered_inc42.orders (the live public.orders holds 0 rows now)');
  });

  it('refuses lists it cannot place, each in one sentence', () => {
    const reason = (tables: string[]) => {
      const r = planTableCopies(tables, 'recovered');
      assert.equal(r.ok, false);
      return (r as { reason: string }).reason;
    };
    assert.equal(reason(['', ' ']), '--tables names no table: give them comma-separated, such as --tables orders,order_items.');
    assert.equal(reason(['Orders']), 'the table "Orders" is not a name lifeboat restores: use lowercase letters, digits, _ and $, starting with a letter or _, at most 63 characters.');
    assert.equal(reason(['a.b.c']), 'the table "a.b.c" has more than one dot: give table or schema.table.');
    assert.equal(reason(['orders', 'public.orders']), '--tables names public.orders twice: name each table once.');
    assert.equal(reason(['orders', 'sales.orders']), 'public.orders and sales.orders would both become recovered.orders: restore them in separate runs, into separate schemas.');
    assert.equal(reason(['x;drop table y']), 'the table "x;drop table y" is not a name lifeboat restores: use lowercase letters, digits, _ and $, starting with a letter or _, at most 63 characters.');
  });

  it('takes only a plain new schema name', () => {
    assert.equal(intoSchemaProblem('recovered_inc42'), undefined);
    assert.match(intoSchemaProblem('Recovered') ?? '', /^--into-schema "Recovered" is not a valid schema name: use lowercase/);
    assert.match(intoSchemaProblem('a'.repeat(64)) ?? '', /is not a valid schema name: it is longer than 63 characters\.$/);
    assert.match(intoSchemaProblem('public') ?? '', /is a name PostgreSQL or every database already uses/);
    assert.match(intoSchemaProblem('pg_temp') ?? '', /is a name PostgreSQL or every database already uses/);
  });

  it('reads back the owner it wrote on the schema, and nothing else as an owner', () => {
    const owner = { workflowId: 'w', runId: 'r', restorePoint: '2026-12-01T00:00:00.000Z', createdAt: '2026-12-01T00:01:00.000Z' };
    assert.deepEqual(parseSchemaOwner(schemaOwnerComment(owner)), owner);
    assert.equal(parseSchemaOwner('made by hand'), undefined);
    assert.equal(parseSchemaOwner(null), undefined);
    assert.equal(parseSchemaOwner('lifeboat table restore: {"workflowId": 1}'), undefined);
  });

  it('prepares the workflow input from the CLI options', () => {
    const config = loadConfig(CONFIG_FILE);
    const { input, workflowId } = prepareTableRestore(config, {
      target: 'app',
      to: '2026-11-30T10:00:00Z',
      reason: 'DELETE without WHERE',
      as: 'alice@example.com',
      emergency: false,
      cutover: false,
      keep: false,
      tables: 'orders,order_items',
      intoSchema: 'recovered_inc42',
    });
    assert.match(workflowId, /^restore-tables-app-/);
    assert.deepEqual(input.tables, ['public.orders', 'public.order_items']);
    assert.equal(input.intoSchema, 'recovered_inc42');
    assert.equal('cutover' in input, false);
  });

  describe('the CLI refuses with exit 2 before connecting', () => {
    // No Temporal at this address: a refusal must come before any connection is tried.
    const env = { LIFEBOAT_CONFIG: CONFIG_FILE, LIFEBOAT_USER: 'alice@example.com', LIFEBOAT_TEMPORAL_PORT: '1' };
    const cases: Array<[string[], string]> = [
      [['--tables', 'orders'], 'lifeboat: --tables needs --into-schema <new schema>: the tables are copied into a new schema of the live database, never over the tables there.\n'],
      [['--into-schema', 'recovered_x'], 'lifeboat: --into-schema needs --tables <table,...>: name the tables to restore into it.\n'],
      [['--tables', 'orders', '--into-schema', 'Bad-Name'], 'lifeboat: --into-schema "Bad-Name" is not a valid schema name: use lowercase letters, digits, _ and $, starting with a letter or _, at most 63 characters.\n'],
      [['--tables', 'orders', '--into-schema', 'recovered_x', '--cutover'], 'lifeboat: --cutover moves traffic to a restored instance; a table restore copies tables next to production and removes its instance: leave out --cutover or --tables.\n'],
    ];
    for (const [extra, stderr] of cases) {
      it(extra.join(' '), async () => {
        const r = await runNode(CLI, ['restore', 'app', '--to', '2026-11-30T10:00:00Z', '--reason', 'test', ...extra], env);
        assert.equal(r.stderr, stderr);
        assert.equal(r.code, 2);
        assert.equal(r.stdout, '');
      });
    }
  });
});
