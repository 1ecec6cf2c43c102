import type { Version } from './version.ts';

export interface FileEntry {
  path: string;
  version: Version;
  deleted: false;
  size: number;
  sha256: string;
  contentType: string;
}

export interface Tombstone {
  path: string;
  version: Version;
  deleted: true;
}

export type Entry = FileEntry | Tombstone;

/** What an entry holds, to tell two entries of one version apart: '' for a delete, else the SHA-256 of the bytes. */
export function contentOf(e: Entry): string {
  return e.deleted ? '' : e.sha256;
}
