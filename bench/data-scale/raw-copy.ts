// The baseline of the data-scale benchmark: the plainest streaming copy of the same files over a loopback
// TCP connection, with the durability a joining file server gives them. Two processes, like the seed and
// the joiner:
//
//   node bench/data-scale/raw-copy.ts receive <dst>          prints `port N`, then `done FILES BYTES`
//   node bench/data-scale/raw-copy.ts send <src> <list> <port> prints `ready`, starts on a line on stdin
//
// The sender reads each listed file and writes a frame (u32 path length, path, f64 size, the bytes),
// small files joined into 256 KiB socket writes, large ones read in 256 KiB pieces. The receiver creates
// each file in a fresh directory tree and counts it only once it is on stable storage, in batches like
// the joiner's group commits: after every 8 MiB (or 1,024 files) it runs `sync -f` (syncfs: the cheapest
// way to make a batch of separate files and their directory entries durable; an fdatasync per file was
// 2 to 5 times slower here), while the next batch is already being received. So the same guarantee as
// the joiner's (a file counts once its bytes are durable) with nothing on top: no hashing, no journal,
// no manifest.
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';

const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_FILES = 1024;
const COALESCE = 256 * 1024;
const SMALL = 256 * 1024;

function syncfs(dir: string): Promise<void> {
  return new Promise((resolve, reject) =>
    spawn('sync', ['-f', dir], { stdio: 'inherit' }).once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`sync -f exited ${c}`)))),
  );
}

async function receive(dst: string): Promise<void> {
  mkdirSync(dst, { recursive: true });
  const server = net.createServer((socket) => {
    server.close();
    let files = 0;
    let bytes = 0;
    const made = new Set<string>();
    let batchFiles = 0;
    let batchBytes = 0;
    // Batches completed while a sync runs share the next one, the way group commit works.
    let unsynced = 0;
    let syncing: Promise<void> | undefined;
    const syncLoop = async () => {
      while (unsynced > 0) {
        const n = unsynced;
        unsynced = 0;
        await syncfs(dst);
        files += n;
      }
      syncing = undefined;
    };
    const flush = () => {
      unsynced += batchFiles;
      batchFiles = 0;
      batchBytes = 0;
      syncing ??= syncLoop();
    };
    // Frame parser over the socket's chunks.
    let buf: Buffer = Buffer.alloc(0);
    let cur: { fd: number; left: number; size: number } | undefined;
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        if (cur) {
          const take = Math.min(cur.left, buf.length);
          if (take > 0) {
            let off = 0;
            while (off < take) off += writeSync(cur.fd, buf, off, take - off);
            buf = buf.subarray(take);
            cur.left -= take;
          }
          if (cur.left > 0) return;
          closeSync(cur.fd);
          batchFiles++;
          batchBytes += cur.size;
          bytes += cur.size;
          cur = undefined;
          if (batchBytes >= BATCH_BYTES || batchFiles >= BATCH_FILES) flush();
          continue;
        }
        if (buf.length < 4) return;
        const nameLen = buf.readUInt32BE(0);
        if (buf.length < 4 + nameLen + 8) return;
        const rel = buf.toString('utf8', 4, 4 + nameLen);
        const size = buf.readDoubleBE(4 + nameLen);
        buf = buf.subarray(4 + nameLen + 8);
        const file = path.join(dst, rel);
        const dir = path.dirname(file);
        if (!made.has(dir)) {
          mkdirSync(dir, { recursive: true });
          made.add(dir);
        }
        cur = { fd: openSync(file, 'wx'), left: size, size };
      }
    });
    socket.on('end', () => {
      if (cur) throw new Error('the stream ended inside a file');
      flush();
      void syncing!.then(() => {
        process.stdout.write(`done ${files} ${bytes}\n`);
        process.exit(0);
      });
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${(server.address() as net.AddressInfo).port}\n`));
}

async function send(src: string, list: string, port: number): Promise<void> {
  const rels = readFileSync(list, 'utf8').split('\n').filter(Boolean);
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  const write = (b: Buffer): Promise<void> | undefined => (socket.write(b) ? undefined : new Promise((resolve) => socket.once('drain', resolve)));
  let parts: Buffer[] = [];
  let pending = 0;
  const flush = async () => {
    if (pending === 0) return;
    const out = Buffer.concat(parts, pending);
    parts = [];
    pending = 0;
    await write(out);
  };
  for (const rel of rels) {
    const file = path.join(src, rel);
    const fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const name = Buffer.from(rel);
    const head = Buffer.allocUnsafe(4 + name.length + 8);
    head.writeUInt32BE(name.length, 0);
    name.copy(head, 4);
    head.writeDoubleBE(size, 4 + name.length);
    parts.push(head);
    pending += head.length;
    if (size <= SMALL) {
      const data = Buffer.allocUnsafe(size);
      let off = 0;
      while (off < size) off += readSync(fd, data, off, size - off, off);
      closeSync(fd);
      parts.push(data);
      pending += size;
      if (pending >= COALESCE) await flush();
      continue;
    }
    await flush();
    for await (const chunk of createReadStream('', { fd, highWaterMark: 256 * 1024 })) await write(chunk as Buffer);
  }
  await flush();
  socket.end();
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'receive') await receive(rest[0]!);
else if (mode === 'send') await send(rest[0]!, rest[1]!, Number(rest[2]));
else throw new Error('usage: raw-copy.ts receive <dst> | send <src> <list> <port>');
