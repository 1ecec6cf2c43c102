import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FileEntry, Tombstone } from '../../../../fileserver/src/store/entry.ts';
import { conditionsHold, etagMatches } from '../../../../fileserver/src/store/store.ts';

const file: FileEntry = { path: 'a.txt', version: '01a2348940bb0000-n1', deleted: false, size: 1, sha256: 'f'.repeat(64), contentType: 'text/plain' };
const gone: Tombstone = { path: 'a.txt', version: '01a2348940bc0000-n1', deleted: true };
const tag = `"${file.version}"`;

describe('conditional write preconditions (RFC 9110 13.1)', () => {
  it('If-Match compares strongly: the current tag holds, its weak spelling does not', () => {
    assert.equal(conditionsHold(file, { ifMatch: [tag] }), true);
    assert.equal(conditionsHold(file, { ifMatch: ['"other"', tag] }), true);
    assert.equal(conditionsHold(file, { ifMatch: [`W/${tag}`] }), false);
    assert.equal(conditionsHold(file, { ifMatch: '*' }), true);
    assert.equal(conditionsHold(undefined, { ifMatch: [tag] }), false);
    assert.equal(conditionsHold(gone, { ifMatch: '*' }), false);
  });

  it('If-None-Match compares weakly: the current tag fails the write in either spelling', () => {
    assert.equal(conditionsHold(file, { ifNoneMatch: [tag] }), false);
    assert.equal(conditionsHold(file, { ifNoneMatch: [`W/${tag}`] }), false);
    assert.equal(conditionsHold(file, { ifNoneMatch: ['W/"other"'] }), true);
    assert.equal(conditionsHold(file, { ifNoneMatch: '*' }), false);
    assert.equal(conditionsHold(gone, { ifNoneMatch: '*' }), true);
  });

  it('etagMatches: strong never matches a weak tag, weak ignores W/ on the listed side', () => {
    assert.equal(etagMatches([`W/${tag}`], tag, 'strong'), false);
    assert.equal(etagMatches([`W/${tag}`], tag, 'weak'), true);
    assert.equal(etagMatches([tag], tag, 'strong'), true);
  });
});
