// File paths are keys in the store, never file-system paths, but they are still held to strict
// rules so that no spelling of traversal, control character or over-long name gets in.
export const MAX_PATH_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 255;

export type PathCheck =
  | { ok: true; path: string }
  | { ok: false; status: 400 | 414; code: string; message: string };

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this pattern's job
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
// Letters, digits, `_`, `-` and `.` in segments that do not start with a dot: no spelling of `.` or `..`,
// nothing to decode, one byte per character. Most paths look like this, and a catch-up checks thousands.
const PLAIN_PATH_RE = /^[\w-][\w.-]*(?:\/[\w-][\w.-]*)*$/;

function bad(code: string, message: string): PathCheck {
  return { ok: false, status: 400, code, message };
}

function tooLong(message: string): PathCheck {
  return { ok: false, status: 414, code: 'path_too_long', message };
}

/**
 * Checks a decoded path such as `a/b/c.txt` and returns its one spelling: Unicode NFC. Canonically
 * equivalent spellings (`café` as `e` + U+0301, as macOS file systems hand names out, and as U+00E9)
 * name one file, so a sync client on a normalising file system, which cannot hold both, always finds
 * the file it wrote. Paths are normalised wherever they enter: the files API, listing prefixes and
 * replicated changes.
 */
export function checkPath(raw: string): PathCheck {
  if (raw.length <= MAX_SEGMENT_BYTES && PLAIN_PATH_RE.test(raw)) return { ok: true, path: raw };
  if (raw.length === 0) return bad('invalid_path', 'path is empty');
  if (!raw.isWellFormed()) return bad('invalid_path', 'path is not valid Unicode');
  const path = raw.normalize('NFC');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return tooLong(`path is longer than ${MAX_PATH_BYTES} bytes`);
  if (path.includes('\\')) return bad('invalid_path', 'backslashes are not allowed in paths');
  if (CONTROL_RE.test(path)) return bad('invalid_path', 'control characters (including NUL) are not allowed in paths');
  if (path.startsWith('/')) return bad('invalid_path', 'absolute paths are not allowed');
  for (const segment of path.split('/')) {
    if (segment === '') return bad('invalid_path', 'empty path segment');
    if (segment === '.' || segment === '..') return bad('path_traversal', `path segment "${segment}" is not allowed`);
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return tooLong(`a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return { ok: true, path };
}

/** Checks the still-encoded path taken from a request URL (the part after `/files/`). */
export function parseUrlPath(raw: string): PathCheck {
  if (raw.length > MAX_PATH_BYTES * 3) return tooLong(`path is longer than ${MAX_PATH_BYTES} bytes`);
  const segments: string[] = [];
  for (const rawSegment of raw.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(rawSegment);
    } catch {
      return bad('invalid_path', 'path has a malformed percent-encoding');
    }
    if (segment.includes('/')) return bad('invalid_path', 'encoded slashes are not allowed in paths');
    segments.push(segment);
  }
  return checkPath(segments.join('/'));
}

/** A listing prefix in the spelling paths are kept in (NFC); an ill-formed one matches nothing either way. */
export function canonicalPrefix(prefix: string): string {
  return prefix.isWellFormed() ? prefix.normalize('NFC') : prefix;
}
