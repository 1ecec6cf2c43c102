import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedSerializer } from '../../../../fileserver/src/http/path-lock.ts';

describe('KeyedSerializer', () => {
  it('runs the tasks of one key one at a time, in order, past a failing one', async () => {
    const s = new KeyedSerializer();
    const log: string[] = [];
    const task =
      (name: string, ms: number, fail = false) =>
      async () => {
        log.push(`start ${name}`);
        await sleep(ms);
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      };
    const results = await Promise.allSettled([s.run('p', task('1', 20)), s.run('p', task('2', 5, true)), s.run('p', task('3', 1))]);
    assert.deepEqual(log, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
  });

  it('runs the tasks of different keys side by side', async () => {
    const s = new KeyedSerializer();
    const log: string[] = [];
    const task = (name: string, ms: number) => async () => {
      log.push(`start ${name}`);
      await sleep(ms);
      log.push(`end ${name}`);
    };
    await Promise.all([s.run('p', task('p', 20)), s.run('q', task('q', 1))]);
    assert.deepEqual(log, ['start p', 'start q', 'end q', 'end p']);
  });
});
