import { z } from 'zod';
import { BUCKETS, bucketOf } from '../store/digest.ts';
import { MAX_PATH_BYTES } from '../store/paths.ts';
import type { Version } from '../store/version.ts';

// The catch-up exchange between peers: GET /internal/digest, then POST /internal/manifest page by page
// for the differing buckets, then POST /internal/fetch for the paths worth pulling.

/** The most entries one manifest page may hold: about 12 MB of JSON at the longest paths. */
export const MAX_PAGE_ENTRIES = 10_000;

export interface DigestAnswer {
  buckets: string[];
  /** The answering node's horizon (replication/gc-horizon.ts); absent from peers of earlier releases. */
  horizon?: string;
  /** The answering node is stale: its absences and old files are not to be trusted. */
  stale?: boolean;
}

/**
 * A manifest cursor: the bucket (two hex digits) and the path of the last entry a page held. Pages go in
 * (bucket, path) order, the order of the store's index, so a page is one index range per bucket; compared
 * by code point (as SQLite compares text, byte by byte in UTF-8), cursors grow from page to page.
 */
const CURSOR_RE = /^[0-9a-f]{2}\//;

export function encodeCursor(path: string): string {
  return `${bucketOf(path).toString(16).padStart(2, '0')}/${path}`;
}

export function decodeCursor(cursor: string): { bucket: number; path: string } {
  return { bucket: Number.parseInt(cursor.slice(0, 2), 16), path: cursor.slice(3) };
}

/** Code point order (UTF-8 byte order), in which the store's index holds paths; `<` on strings compares UTF-16 units. */
export function compareCursors(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * A manifest request. With `limit` it asks for one page: entries of `buckets` in (bucket, path) order
 * after the cursor `after` (the previous page's `next`). Without `limit` it asks for every entry of `buckets` in
 * one answer, which is how nodes of the previous version ask: they are still answered, but that answer
 * grows without bound.
 */
export const ManifestRequest = z
  .object({
    buckets: z
      .array(
        z
          .number()
          .int()
          .min(0)
          .max(BUCKETS - 1),
      )
      .max(BUCKETS),
    limit: z.number().int().min(1).max(MAX_PAGE_ENTRIES).optional(),
    after: z
      .string()
      .max(MAX_PATH_BYTES + 3)
      .regex(CURSOR_RE, 'a cursor is two hex digits, a slash and a path')
      .optional(),
  })
  .strict()
  .refine((r) => r.after === undefined || r.limit !== undefined, { message: 'after needs limit', path: ['after'] });
export type ManifestRequest = z.infer<typeof ManifestRequest>;

export interface ManifestItem {
  path: string;
  version: Version;
  deleted: boolean;
  /** The file's SHA-256 ('' for a delete); absent from peers of earlier releases. */
  sha256?: string;
}

/** One page; `next` is the cursor for the following page, absent on the last one. */
export interface ManifestPage {
  entries: ManifestItem[];
  next?: string;
}

export const FetchRequest = z.object({ paths: z.array(z.string().max(4096)).max(10_000) }).strict();
export type FetchRequest = z.infer<typeof FetchRequest>;
