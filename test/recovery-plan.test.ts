import assert from 'node:assert/strict';
import { criticalPath, dependenciesOf, drillNameFor, findCycle, graphProblems, planWaves } from '../src/domain/recovery-plan';

const step = (name: string, after: string[] = []) => ({ name, after });

describe('recovery plan graph', () => {
  const plan = [step('db'), step('files'), step('name', ['db']), step('app', ['name', 'files'])];

  it('groups independent steps into waves, in declaration order', () => {
    assert.deepEqual(planWaves(plan), [['db', 'files'], ['name'], ['app']]);
  });

  it('finds the critical path by predicted duration, not by number of steps', () => {
    const seconds: Record<string, number> = { db: 600, files: 30, name: 5, app: 20 };
    assert.deepEqual(criticalPath(plan, (n) => seconds[n]), { steps: ['db', 'name', 'app'], seconds: 625 });
    // When the bucket switch is the slow one, the path goes through it instead.
    const slowFiles: Record<string, number> = { db: 60, files: 900, name: 5, app: 20 };
    assert.deepEqual(criticalPath(plan, (n) => slowFiles[n]), { steps: ['files', 'app'], seconds: 920 });
  });

  it('counts unknown durations as zero and still returns a path', () => {
    assert.deepEqual(criticalPath(plan, () => undefined), { steps: ['db'], seconds: 0 });
  });

  it('names every problem of a broken graph in a sentence saying what to do', () => {
    assert.deepEqual(graphProblems([step('a', ['a'])]), ['step a waits for itself: remove a from its own after list']);
    assert.match(graphProblems([step('a', ['ghost'])])[0], /waits for ghost, which is not a step of the plan: declare it/);
    assert.match(graphProblems([step('a'), step('a')])[0], /declared twice/);
    const circle = graphProblems([step('a', ['c']), step('b', ['a']), step('c', ['b']), step('d')]);
    assert.equal(circle.length, 1);
    assert.match(circle[0], /in a circle \(a -> c -> b -> a\).*break the circle/);
    assert.throws(() => planWaves([step('a', ['b']), step('b', ['a'])]), /circle/);
  });

  it('finds no cycle in a diamond', () => {
    assert.equal(findCycle([step('a'), step('b', ['a']), step('c', ['a']), step('d', ['b', 'c'])]), undefined);
    assert.deepEqual([...dependenciesOf([step('a'), step('b', ['a']), step('c', ['a']), step('d', ['b', 'c'])], 'd')].sort(), ['a', 'b', 'c']);
  });
});

describe('drill names', () => {
  it('moves a production name into the drill zone', () => {
    assert.equal(drillNameFor('db.app.lifeboat.test.', 'lifeboat.test.', 'drill.lifeboat.test.'), 'db.app.drill.lifeboat.test.');
    assert.equal(drillNameFor('DB.App.Example.com', 'example.com', 'drill.example.com'), 'db.app.drill.example.com.');
  });

  it('refuses a name outside the zone instead of guessing', () => {
    assert.throws(() => drillNameFor('db.other.test.', 'lifeboat.test.', 'drill.lifeboat.test.'), /outside zone lifeboat.test./);
    // A suffix that only looks like the zone is not in it.
    assert.throws(() => drillNameFor('db.notlifeboat.test.', 'lifeboat.test.', 'drill.lifeboat.test.'), /outside zone/);
  });
});
