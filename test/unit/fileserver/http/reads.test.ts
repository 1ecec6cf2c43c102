import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRead, plainFileTarget, type EntryHeaders, type ReadConditions } from '../../../../fileserver/src/http/reads.ts';
import type { FileEntry } from '../../../../fileserver/src/store/entry.ts';

const entry: FileEntry = { path: 'a.txt', version: '01a2348940bb0000-n1', deleted: false, size: 10, sha256: 'f'.repeat(64), contentType: 'text/plain' };
const etag = `"${entry.version}"`;
const common = ['ETag', etag, 'Last-Modified', 'LM', 'Accept-Ranges', 'bytes', 'X-FileCluster-Version', entry.version, 'X-FileCluster-SHA256', entry.sha256];
const h: EntryHeaders = [...common, 'Content-Type', 'text/plain; charset=utf-8', 'Content-Length', '10'];
const when = (c: Partial<ReadConditions>): ReadConditions => ({ ifNoneMatch: undefined, ifRange: undefined, range: undefined, ...c });

describe('planRead', () => {
  it('sends the whole file with the cached headers when nothing is asked', () => {
    const p = planRead(entry, h, when({}));
    assert.deepEqual(p, { kind: 'bytes', status: 200, headers: h, start: 0, end: 9 });
    assert.equal(p.headers, h, 'the cached list itself, no per-request copy');
  });

  it('answers 304 to a matching If-None-Match (listed, *, among others), before any range', () => {
    for (const inm of [etag, '*', ` "x", ${etag} `]) {
      assert.deepEqual(planRead(entry, h, when({ ifNoneMatch: inm, range: 'bytes=0-1' })), { kind: 'not_modified', headers: common }, inm);
    }
    // If-None-Match compares weakly (RFC 9110 13.1.2): the weak spelling of the current tag matches too.
    assert.deepEqual(planRead(entry, h, when({ ifNoneMatch: `W/${etag}` })), { kind: 'not_modified', headers: common });
    assert.equal(planRead(entry, h, when({ ifNoneMatch: '"other"' })).kind, 'bytes');
    assert.equal(planRead(entry, h, when({ ifNoneMatch: 'W/"other"' })).kind, 'bytes');
  });

  it('answers 206 with Content-Range and the part length', () => {
    assert.deepEqual(planRead(entry, h, when({ range: 'bytes=-3' })), {
      kind: 'bytes',
      status: 206,
      headers: [...common, 'Content-Type', 'text/plain; charset=utf-8', 'Content-Range', 'bytes 7-9/10', 'Content-Length', '3'],
      start: 7,
      end: 9,
    });
  });

  it('honours a range only under a matching If-Range', () => {
    assert.equal(planRead(entry, h, when({ ifRange: etag, range: 'bytes=0-1' })).kind, 'bytes');
    // If-Range compares strongly: a weak tag never allows a range.
    assert.deepEqual(planRead(entry, h, when({ ifRange: `W/${etag}`, range: 'bytes=0-1' })), { kind: 'bytes', status: 200, headers: h, start: 0, end: 9 });
    assert.deepEqual(planRead(entry, h, when({ ifRange: '"old"', range: 'bytes=0-1' })), { kind: 'bytes', status: 200, headers: h, start: 0, end: 9 });
    // An outdated If-Range sends the whole file even when the range is past the end.
    assert.equal(planRead(entry, h, when({ ifRange: '"old"', range: 'bytes=100-' })).kind, 'bytes');
  });

  it('answers 416 with Content-Range */size to a range past the end', () => {
    const p = planRead(entry, h, when({ range: 'bytes=10-' }));
    assert.equal(p.kind, 'unsatisfiable');
    if (p.kind !== 'unsatisfiable') return;
    assert.deepEqual(p.headers, [...common, 'Content-Range', 'bytes */10']);
    assert.equal(p.error.status, 416);
    assert.equal(p.error.code, 'range_not_satisfiable');
  });

  it('sends an empty file whole (end before start)', () => {
    const empty = { ...entry, size: 0 };
    assert.deepEqual(planRead(empty, h, when({})), { kind: 'bytes', status: 200, headers: h, start: 0, end: -1 });
  });
});

describe('plainFileTarget', () => {
  const cases: Array<[string, string | undefined]> = [
    ['/files/a.txt', 'a.txt'],
    ['/files/a/b%20c.txt?x=1', 'a/b%20c.txt'],
    ['/files/%2e%2e/x', '%2e%2e/x'],
    ['/files//etc', '/etc'],
    // the listing and everything the router spells differently go through Koa
    ['/files', undefined],
    ['/files/', undefined],
    ['/files/?prefix=a', undefined],
    ['/FILES/a.txt', undefined],
    ['/files/a.txt#frag', undefined],
    ['http://host/files/a.txt', undefined],
    ['/filesx/a', undefined],
    ['/internal/peers', undefined],
  ];
  for (const [url, want] of cases) it(url, () => assert.equal(plainFileTarget(url), want));
});
