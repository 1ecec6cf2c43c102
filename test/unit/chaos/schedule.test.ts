import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OPERATOR_FAULT_KINDS, operatorScheduleArbitrary, scheduleFor, type Step } from '../../chaos/schedule.ts';

const options = { maxReplicas: 4, keys: 6, maxSteps: 30, faults: OPERATOR_FAULT_KINDS, kinds: ['put', 'delete', 'get'] as const };

describe('operator chaos schedules', () => {
  it('a seed gives the same schedule every time', () => {
    assert.deepEqual(scheduleFor(42, operatorScheduleArbitrary(options)), scheduleFor(42, operatorScheduleArbitrary(options)));
  });

  it('use only the operator faults, with ordinals and replica counts within bounds', () => {
    const steps: Step[] = [];
    for (let seed = 0; seed < 50; seed++) steps.push(...scheduleFor(seed, operatorScheduleArbitrary(options)));
    const kinds = new Set(steps.map((s) => s.t));
    assert.deepEqual([...kinds].sort(), ['delete-pod', 'kill', 'kill-leader', 'ops', 'pause', 'restart-api', 'resume', 'scale', 'settle', 'sleep']);
    for (const s of steps) {
      if (s.t === 'scale') assert.ok(s.replicas >= 1 && s.replicas <= 4, `scale to ${s.replicas}`);
      if ('node' in s) assert.ok(s.node >= 0 && s.node < 4, `${s.t} of ordinal ${s.node}`);
    }
  });

  it('leave out the faults not asked for', () => {
    const steps = scheduleFor(7, operatorScheduleArbitrary({ ...options, faults: ['scale'] }));
    assert.ok(steps.every((s) => ['ops', 'settle', 'sleep', 'scale'].includes(s.t)));
  });
});
