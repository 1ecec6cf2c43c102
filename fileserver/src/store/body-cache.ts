/**
 * The bytes of small files recently written or read by clients, by path, least recently used evicted
 * first once they pass a byte budget. A body is kept with the version it belongs to, and only once its
 * SHA-256 was checked (or computed from it), so a hit for the current version skips the database read
 * and the hash.
 */
export class BodyCache {
  private readonly map = new Map<string, { version: string; data: Buffer }>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** The bytes of `path` at `version`, if kept. */
  get(path: string, version: string): Buffer | undefined {
    const hit = this.map.get(path);
    if (!hit || hit.version !== version) return undefined;
    this.map.delete(path);
    this.map.set(path, hit);
    return hit.data;
  }

  set(path: string, version: string, data: Buffer): void {
    this.delete(path);
    if (data.length > this.maxBytes) return;
    this.map.set(path, { version, data: ownBuffer(data) });
    this.bytes += data.length;
    for (const [oldest, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(oldest);
      this.bytes -= v.data.length;
    }
  }

  delete(path: string): void {
    const old = this.map.get(path);
    if (!old) return;
    this.map.delete(path);
    this.bytes -= old.data.length;
  }

  /** Bytes held. */
  get size(): number {
    return this.bytes;
  }
}

/**
 * `data` in a buffer of exactly its size. A request body is often a view into a larger socket buffer,
 * which it would keep alive, and Buffer.from copies into a shared pool: the budget counts bytes held.
 */
function ownBuffer(data: Buffer): Buffer {
  if (data.byteOffset === 0 && data.buffer.byteLength === data.length) return data;
  const own = Buffer.allocUnsafeSlow(data.length);
  data.copy(own);
  return own;
}
