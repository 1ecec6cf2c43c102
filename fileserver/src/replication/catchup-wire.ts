import { z } from 'zod';
import { BUCKETS } from '../store/digest.ts';
import { MAX_PATH_BYTES } from '../store/paths.ts';
import type { Version } from '../store/version.ts';

// The catch-up exchange between peers: GET /internal/digest, then POST /internal/manifest page by page
// for the differing buckets, then POST /internal/fetch for the paths worth pulling.

/** The most entries one manifest page may hold: about 11 MB of JSON at the longest paths. */
export const MAX_PAGE_ENTRIES = 10_000;

export interface DigestAnswer {
  buckets: string[];
}

/**
 * A manifest request. With `limit` it asks for one page: entries of `buckets` in path order after the
 * cursor `after` (the previous page's `next`). Without `limit` it asks for every entry of `buckets` in
 * one answer, which is how nodes of the previous version ask: they are still answered, but that answer
 * grows without bound.
 */
export const ManifestRequest = z
  .object({
    buckets: z.array(z.number().int().min(0).max(BUCKETS - 1)).max(BUCKETS),
    limit: z.number().int().min(1).max(MAX_PAGE_ENTRIES).optional(),
    after: z.string().max(MAX_PATH_BYTES).optional(),
  })
  .strict()
  .refine((r) => r.after === undefined || r.limit !== undefined, { message: 'after needs limit', path: ['after'] });
export type ManifestRequest = z.infer<typeof ManifestRequest>;

export interface ManifestItem {
  path: string;
  version: Version;
  deleted: boolean;
}

/** One page; `next` is the cursor for the following page, absent on the last one. */
export interface ManifestPage {
  entries: ManifestItem[];
  next?: string;
}

export const FetchRequest = z.object({ paths: z.array(z.string().max(4096)).max(10_000) }).strict();
export type FetchRequest = z.infer<typeof FetchRequest>;
