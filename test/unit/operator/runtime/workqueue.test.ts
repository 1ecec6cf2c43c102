import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWorkers, spreadOver, WorkQueue } from '../../../../operator/src/runtime/workqueue.ts';

test('adds of a waiting key merge into one', async () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('b');
  q.add('a');
  assert.equal(q.depth, 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
  q.shutDown();
  assert.equal(await q.get(), undefined);
});

test('a key added while it is processed comes back once, after done, never in parallel', async () => {
  const q = new WorkQueue();
  q.add('a');
  const first = await q.get();
  q.add('a');
  q.add('a');
  assert.equal(q.depth, 0, 'not handed out while processing');
  q.done(first!);
  assert.equal(q.depth, 1);
  assert.equal(await q.get(), 'a');
  q.done('a');
  assert.equal(q.depth, 0);
  q.shutDown();
});

test('failures back off exponentially per key and forget resets', () => {
  const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
  assert.deepEqual([q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k')], [10, 20, 40, 50]);
  assert.equal(q.addRateLimited('other'), 10);
  q.forget('k');
  assert.equal(q.addRateLimited('k'), 10);
  q.shutDown();
});

test('addAfter delivers later; the earliest pending delay for a key wins', async () => {
  const q = new WorkQueue();
  q.addAfter('a', 5000);
  q.addAfter('a', 20);
  q.addAfter('a', 3000);
  const started = Date.now();
  assert.equal(await q.get(), 'a');
  assert.ok(Date.now() - started < 2000);
  q.shutDown();
});

test('a slow key does not block other keys; a throwing handler is retried with backoff', async () => {
  const q = new WorkQueue({ baseDelayMs: 5 });
  let releaseSlow!: () => void;
  const slowGate = new Promise<void>((r) => (releaseSlow = r));
  const seen: string[] = [];
  let flaky = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((r) => (allDone = r));
  const errors: string[] = [];
  const workers = runWorkers(
    q,
    2,
    async (key) => {
      seen.push(key);
      if (key === 'slow') await slowGate;
      if (key === 'flaky' && ++flaky < 3) throw new Error('boom');
      if (key === 'flaky') allDone();
      return {};
    },
    (key) => errors.push(key),
  );
  q.add('slow');
  q.add('flaky');
  await finished;
  assert.deepEqual(errors, ['flaky', 'flaky']);
  assert.equal(seen.filter((k) => k === 'flaky').length, 3);
  assert.equal(seen.filter((k) => k === 'slow').length, 1, 'slow is still running, alone');
  releaseSlow();
  q.shutDown();
  await workers;
});

test('an urgent add jumps the queue, also for a key already waiting or being processed', async () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('b');
  q.add('c');
  q.addUrgent('d');
  q.addUrgent('c');
  assert.equal(q.depth, 4, 'an urgent add of a waiting key moves it, never duplicates it');
  assert.equal(await q.get(), 'c');
  assert.equal(await q.get(), 'd');
  q.addUrgent('c');
  q.add('e');
  q.done('c');
  q.done('d');
  assert.deepEqual([await q.get(), await q.get(), await q.get(), await q.get()], ['c', 'a', 'b', 'e']);
  q.shutDown();
});

test('periodic adds are spread evenly over the period, the first at once', () => {
  assert.deepEqual(spreadOver(4, 60_000), [0, 15_000, 30_000, 45_000]);
  assert.deepEqual(spreadOver(3, 1000), [0, 333, 666]);
  assert.deepEqual(spreadOver(0, 1000), []);
});
