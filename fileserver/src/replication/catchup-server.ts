import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { Store } from '../store/store.ts';
import { writeChunks } from '../streams.ts';
import { decodeCursor, encodeCursor, type DigestAnswer, type FetchRequest, type ManifestPage, type ManifestRequest } from './catchup-wire.ts';
import { encodeChanges, type OutgoingChange } from './frames.ts';
import { closeAll, outgoingChange } from './outgoing.ts';

/** The peer's side of catch-up: the digest, the manifest pages and the fetch stream. */
export function digestAnswer(store: Store, stale: boolean): DigestAnswer {
  return { buckets: store.digestHex(), horizon: store.horizon(), stale };
}

/**
 * One page of the manifest of the asked buckets, read from the store's (bucket, path) index: its cost is
 * its own rows. A page that is full and has more after it carries the cursor to go on from.
 */
export function manifestAnswer(store: Store, req: ManifestRequest): ManifestPage {
  if (req.limit === undefined) return { entries: [...store.entriesInBuckets(req.buckets)] };
  // One entry more than the page holds tells whether another page follows.
  const rows = store.manifestPage(req.buckets, req.after === undefined ? undefined : decodeCursor(req.after), req.limit + 1);
  if (rows.length <= req.limit) return { entries: rows };
  const entries = rows.slice(0, req.limit);
  return { entries, next: encodeCursor(entries.at(-1)!.path) };
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
