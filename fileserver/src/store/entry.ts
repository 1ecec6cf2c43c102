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
