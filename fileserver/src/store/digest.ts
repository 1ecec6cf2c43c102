import { hash } from 'node:crypto';
import type { Version } from './version.ts';

// The manifest digest: entries are spread over buckets by a hash of their path; each bucket is the XOR
// of its entries' hashes, so it updates in O(1) per change and two nodes compare 256 values to find
// the part of the manifest where they differ. An entry's hash covers its content (`contentOf`), so two
// replicas holding one version with different bytes differ too.
export const BUCKETS = 256;
const ENTRY_HASH_BYTES = 16;

// One-shot hashes as 'binary' (latin1) strings, one character per byte: for inputs this short a Hash object cost
// several times the hashing, and a Buffer result (an ArrayBuffer each) three times; every change
// applied (10,000 of them in a join) hashes twice here.
export function bucketOf(path: string): number {
  return hash('sha256', path, 'binary').charCodeAt(0);
}

function entryHash(path: string, version: Version, content: string): string {
  return hash('sha256', `${path}\0${version}\0${content === '' ? 'd' : `f${content}`}`, 'binary');
}

export class ManifestDigest {
  private readonly buckets = Array.from({ length: BUCKETS }, () => Buffer.alloc(ENTRY_HASH_BYTES));

  /** Adds an entry, or takes it out again (`content` as `contentOf` gives it: '' for a delete); returns its bucket's index. */
  toggle(path: string, version: Version, content: string): number {
    const index = bucketOf(path);
    const bucket = this.buckets[index]!;
    const h = entryHash(path, version, content);
    for (let i = 0; i < ENTRY_HASH_BYTES; i++) bucket[i]! ^= h.charCodeAt(i);
    return index;
  }

  /** The bucket's current bytes (the stored form). */
  bucket(index: number): Buffer {
    return this.buckets[index]!;
  }

  /** Sets a bucket from its stored form; false if the bytes cannot be a bucket. */
  load(index: number, bytes: Uint8Array): boolean {
    if (index < 0 || index >= BUCKETS || bytes.length !== ENTRY_HASH_BYTES) return false;
    this.buckets[index]!.set(bytes);
    return true;
  }

  hex(): string[] {
    return this.buckets.map((b) => b.toString('hex'));
  }
}

/** Bucket indexes whose digests differ (a missing or malformed remote bucket counts as different). */
export function differingBuckets(local: string[], remote: string[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < BUCKETS; i++) if (local[i] !== remote[i]) out.push(i);
  return out;
}
