import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalPrefix, checkPath, parseUrlPath } from '../../../../fileserver/src/store/paths.ts';

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

  it('gives canonically equivalent spellings one path: NFC', () => {
    const nfc = 'caf\u00e9/r\u00e9sum\u00e9.txt';
    const nfd = 'cafe\u0301/re\u0301sume\u0301.txt';
    assert.notEqual(nfc, nfd);
    assert.deepEqual(checkPath(nfd), { ok: true, path: nfc });
    assert.deepEqual(checkPath(nfc), { ok: true, path: nfc });
    assert.deepEqual(parseUrlPath(encodeURIComponent('cafe\u0301.txt')), { ok: true, path: 'caf\u00e9.txt' });
    // Hangul jamo compose too; the Kelvin sign is a canonical singleton of K.
    assert.deepEqual(checkPath('\u1100\u1161'), { ok: true, path: '\uac00' });
    assert.deepEqual(checkPath('\u212a.txt'), { ok: true, path: 'K.txt' });
    assert.equal(canonicalPrefix('cafe\u0301'), 'caf\u00e9');
  });

  it('agrees with the rules written out on 20,000 generated paths (plain ones take a shortcut)', () => {
    // Seeded, so a failure repeats; the alphabet mixes the shortcut's characters with every kind it must refuse.
    const alphabet = ['a', 'Z', '0', '_', '-', '.', '.', '/', '/', '\\', ' ', '\u0000', '\u007f', 'é', '\ud800'];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const valid = (p: string) =>
      p.length > 0 &&
      Buffer.byteLength(p) <= 1024 &&
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the model of the path check refuses control characters
      !/[\\\u0000-\u001f\u007f]/.test(p) &&
      p.isWellFormed() &&
      p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..' && Buffer.byteLength(seg) <= 255);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const len = i % 100 === 0 ? 250 + rand(20) : 1 + rand(8);
      const p = Array.from({ length: len }, () => alphabet[rand(alphabet.length)]!).join('');
      assert.equal(checkPath(p).ok, valid(p), JSON.stringify(p));
      if (valid(p)) accepted++;
    }
    assert.ok(accepted > 1000, `only ${accepted} generated paths were valid`);
  });
});
