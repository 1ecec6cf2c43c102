import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quantityToBytes } from '../../../../../operator/src/api/v1alpha1/quantity.ts';

describe('quantityToBytes', () => {
  it('reads binary and decimal suffixes, fractions and plain byte counts', () => {
    const cases: Array<[string, number]> = [
      ['1Gi', 2 ** 30],
      ['1G', 1e9],
      ['1.5Mi', 1.5 * 2 ** 20],
      ['64Ti', 64 * 2 ** 40],
      ['500', 500],
      ['2k', 2000],
      [' 10Gi ', 10 * 2 ** 30],
    ];
    for (const [q, bytes] of cases) assert.equal(quantityToBytes(q), bytes, q);
  });

  it('orders sizes the way the API server does, so a 1Gi to 1000Mi change is a shrink', () => {
    assert.ok(quantityToBytes('1000Mi')! < quantityToBytes('1Gi')!);
    assert.ok(quantityToBytes('1Gi')! > quantityToBytes('1G')!);
  });

  it('gives undefined for what it cannot read, rather than a guess', () => {
    for (const q of ['', 'Gi', '1gi', '1 Gi', '-1Gi', '1e3', '1Zi']) assert.equal(quantityToBytes(q), undefined, JSON.stringify(q));
  });
});
