import type { FileHandle } from 'node:fs/promises';
import type { Entry } from '../store/entry.ts';
import { INLINE_MAX_BYTES, type Store } from '../store/store.ts';
import type { OutgoingChange } from './frames.ts';

/**
 * The change that carries `path` as the store holds it now (`entry`, just looked up): a tombstone, or the
 * file with its bytes, small ones from memory and large ones read through one reused buffer and checked
 * against their SHA-256 on the way (`Store.checkedChunks`: damaged bytes never leave whole). Both ways a
 * path leaves this node, pushes and catch-up fetches, send what this builds. A large file's handle goes
 * into `opened`: read to its end it closes itself, and `closeAll` covers a stream that stopped part-way.
 * Undefined when the file was replaced or deleted between the lookup and the read (its newer state is
 * sent on its own). Read errors (a damaged volume) are thrown.
 */
export async function outgoingChange(store: Store, path: string, entry: Entry, opened: FileHandle[]): Promise<OutgoingChange | undefined> {
  if (entry.deleted) return { header: { path, version: entry.version, deleted: true, size: 0, sha256: '', contentType: '' } };
  if (entry.size <= INLINE_MAX_BYTES) {
    const small = store.readSmall(path);
    if (!small) return undefined;
    const s = small.entry;
    return { header: { path, version: s.version, deleted: false, size: s.size, sha256: s.sha256, contentType: s.contentType }, body: small.data };
  }
  const file = await store.openFile(path);
  if (!file) return undefined;
  const { entry: e, fh } = file;
  opened.push(fh);
  return {
    header: { path, version: e.version, deleted: false, size: e.size, sha256: e.sha256, contentType: e.contentType },
    body: store.checkedChunks(e, fh),
  };
}

/** Closes the handles `outgoingChange` opened, whether or not their streams were read to the end. */
export async function closeAll(opened: FileHandle[]): Promise<void> {
  await Promise.all(opened.map((fh) => fh.close().catch(() => undefined)));
}
