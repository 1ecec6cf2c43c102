import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUrlPath } from '../../../../fileserver/src/store/paths.ts';

describe('file path validation', () => {
  const rejected: Array<[string, number, string]> = [
    ['..', 400, 'path_traversal'],
    ['a/../b', 400, 'path_traversal'],
    ['a/./b', 400, 'path_traversal'],
    ['%2e%2e/etc/passwd', 400, 'path_traversal'],
    ['%2E%2E/etc', 400, 'path_traversal'],
    ['a/%2e%2e', 400, 'path_traversal'],
    ['..%2fetc', 400, 'invalid_path'],
    ['a%2Fb', 400, 'invalid_path'],
    ['a\\..\\b', 400, 'invalid_path'],
    ['a%5c..%5cb', 400, 'invalid_path'],
    ['/etc/passwd', 400, 'invalid_path'],
    ['%2fetc/passwd', 400, 'invalid_path'],
    ['a%00b', 400, 'invalid_path'],
    ['a%0ab', 400, 'invalid_path'],
    ['a//b', 400, 'invalid_path'],
    ['a/', 400, 'invalid_path'],
    ['', 400, 'invalid_path'],
    ['%e0%a4%a', 400, 'invalid_path'],
    ['%ed%a0%80', 400, 'invalid_path'],
    ['x'.repeat(256), 414, 'path_too_long'],
    [`${'abcdefgh/'.repeat(120)}end`, 414, 'path_too_long'],
  ];
  for (const [raw, status, code] of rejected) {
    it(`rejects "${raw.slice(0, 40)}" with ${status} ${code}`, () => {
      const r = parseUrlPath(raw);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.status, status);
        assert.equal(r.code, code);
      }
    });
  }

  it('accepts nested, encoded and Unicode paths and decodes them', () => {
    assert.deepEqual(parseUrlPath('a/b/c.txt'), { ok: true, path: 'a/b/c.txt' });
    assert.deepEqual(parseUrlPath('dir%20x/%C3%A9t%C3%A9.txt'), { ok: true, path: 'dir x/été.txt' });
    assert.deepEqual(parseUrlPath('..hidden/a..b'), { ok: true, path: '..hidden/a..b' });
    assert.deepEqual(parseUrlPath('x'.repeat(255)), { ok: true, path: 'x'.repeat(255) });
  });
});
