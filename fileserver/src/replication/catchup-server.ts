import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { BUCKETS, bucketOf } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { writeChunks } from '../streams.ts';
import type { DigestAnswer, FetchRequest, ManifestItem, ManifestPage, ManifestRequest } from './catchup-wire.ts';
import { encodeChanges, type OutgoingChange } from './frames.ts';
import { closeAll, outgoingChange } from './outgoing.ts';

/**
 * Paths one manifest page may look at. A page for a few buckets hashes every path it passes to find
 * theirs; this bounds that work (about a tenth of a second) at the price of a page that may come back
 * short, or empty, with a cursor to go on from.
 */
const MAX_SCANNED_PER_PAGE = 100_000;

/** The peer's side of catch-up: the digest, the manifest pages and the fetch stream. */
export function digestAnswer(store: Store): DigestAnswer {
  return { buckets: store.manifestDigest() };
}

export function manifestAnswer(store: Store, req: ManifestRequest): ManifestPage {
  const wanted = new Set(req.buckets);
  // A new node differs in every bucket (each a valid index, so 256 distinct ones are all): then no
  // path needs hashing to see whether it is wanted.
  const include = wanted.size === BUCKETS ? undefined : (path: string) => wanted.has(bucketOf(path));
  const page =
    req.limit === undefined
      ? store.entriesAfter(undefined, Infinity, Infinity, include)
      : store.entriesAfter(req.after, req.limit, MAX_SCANNED_PER_PAGE, include);
  const entries: ManifestItem[] = page.entries.map((e) => ({ path: e.path, version: e.version, deleted: e.deleted }));
  return page.next === undefined ? { entries } : { entries, next: page.next };
}

/**
 * Streams the requested paths as they are held now, on the raw response: large files go out from one
 * reused buffer each, every chunk written out before the next is read. Through Koa a read stream
 * allocated a fresh buffer per chunk (a catch-up of GiBs was mostly garbage to collect), and a reused
 * buffer cannot go through a pipe, which queues chunks instead of waiting for them.
 */
export async function writeFetchAnswer(store: Store, { paths }: FetchRequest, res: ServerResponse): Promise<void> {
  const opened: FileHandle[] = [];
  async function* changes(): AsyncGenerator<OutgoingChange> {
    for (const path of paths) {
      const e = store.get(path);
      const change = e && (await outgoingChange(store, path, e, opened));
      if (change) yield change;
    }
  }
  res.writeHead(200, { 'content-type': 'application/x-filecluster-changes' });
  try {
    await writeChunks(res, encodeChanges(changes()));
    res.end();
  } catch {
    // The peer went away or a file could not be read: the cut stream tells the peer to retry.
    res.destroy();
  } finally {
    await closeAll(opened);
  }
}
