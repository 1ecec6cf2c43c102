import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { bucketOf, differingBuckets, ManifestDigest } from '../../../../fileserver/src/store/digest.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();

describe('manifest digest', () => {
  it('is SHA-256 based exactly as nodes of earlier releases compute it, so mixed versions still agree', () => {
    for (const path of ['a', 'dir/file.bin', 'ü/…']) assert.equal(bucketOf(path), sha(path)[0]);
    const d = new ManifestDigest();
    d.toggle('dir/file.bin', '0000000000010000-n1', false);
    const want = Buffer.alloc(16);
    sha('dir/file.bin\u00000000000000010000-n1\u0000f').copy(want, 0, 0, 16);
    assert.equal(d.hex()[bucketOf('dir/file.bin')], want.toString('hex'));
  });

  it('toggling an entry twice restores the bucket, and only changed buckets differ', () => {
    const a = new ManifestDigest();
    const b = new ManifestDigest();
    a.toggle('x', '0000000000010000-n1', false);
    assert.deepEqual(differingBuckets(a.hex(), b.hex()), [bucketOf('x')]);
    a.toggle('x', '0000000000010000-n1', false);
    assert.deepEqual(differingBuckets(a.hex(), b.hex()), []);
  });
});
