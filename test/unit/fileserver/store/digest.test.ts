import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { bucketOf, differingBuckets, ManifestDigest } from '../../../../fileserver/src/store/digest.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

describe('manifest digest', () => {
  it('places entries by the SHA-256 of their path and hashes path, version and content', () => {
    for (const path of ['a', 'dir/file.bin', 'ü/…']) assert.equal(bucketOf(path), sha(path)[0]);
    const d = new ManifestDigest();
    d.toggle('dir/file.bin', '0000000000010000-n1', SHA_A);
    d.toggle('gone.txt', '0000000000010000-n1', '');
    const file = Buffer.alloc(16);
    sha(`dir/file.bin\u00000000000000010000-n1\u0000f${SHA_A}`).copy(file, 0, 0, 16);
    assert.equal(d.hex()[bucketOf('dir/file.bin')], file.toString('hex'));
    const tombstone = Buffer.alloc(16);
    sha('gone.txt\u00000000000000010000-n1\u0000d').copy(tombstone, 0, 0, 16);
    assert.equal(d.hex()[bucketOf('gone.txt')], tombstone.toString('hex'));
  });

  it('differs between replicas holding one version with different bytes, or a file and a delete', () => {
    const [a, b, c] = [new ManifestDigest(), new ManifestDigest(), new ManifestDigest()];
    a.toggle('x', '0000000000010000-n1', SHA_A);
    b.toggle('x', '0000000000010000-n1', SHA_B);
    c.toggle('x', '0000000000010000-n1', '');
    assert.deepEqual(differingBuckets(a.hex(), b.hex()), [bucketOf('x')]);
    assert.deepEqual(differingBuckets(a.hex(), c.hex()), [bucketOf('x')]);
  });

  it('toggling an entry twice restores the bucket, and only changed buckets differ', () => {
    const a = new ManifestDigest();
    const b = new ManifestDigest();
    a.toggle('x', '0000000000010000-n1', SHA_A);
    assert.deepEqual(differingBuckets(a.hex(), b.hex()), [bucketOf('x')]);
    a.toggle('x', '0000000000010000-n1', SHA_A);
    assert.deepEqual(differingBuckets(a.hex(), b.hex()), []);
  });
});
