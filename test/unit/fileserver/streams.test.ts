import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileChunks, writeChunks } from '../../../fileserver/src/streams.ts';

describe('streams of large files', () => {
  let dir: string;
  let file: string;
  const data = randomBytes(600 * 1024 + 123);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-streams-'));
    file = join(dir, 'f');
    await writeFile(file, data);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads a range through one reused buffer, every chunk but the last full', async () => {
    const chunks: Buffer[] = [];
    const copies: Buffer[] = [];
    for await (const c of fileChunks(await open(file), 1000, data.length - 2000)) {
      chunks.push(c);
      copies.push(Buffer.from(c));
    }
    assert.deepEqual(Buffer.concat(copies), data.subarray(1000, data.length - 1000));
    assert.ok(chunks.length >= 3);
    assert.ok(
      chunks.every((c) => c.buffer === chunks[0]!.buffer),
      'one buffer for every chunk',
    );
    assert.ok(chunks.slice(0, -1).every((c) => c.length === chunks[0]!.length));
  });

  it('fails when the file is shorter than announced, and closes it', async () => {
    const fh = await open(file);
    await assert.rejects(async () => {
      for await (const _ of fileChunks(fh, 0, data.length + 1)) void _;
    }, /ended 1 bytes early/);
    await assert.rejects(fh.stat(), /closed/);
  });

  it('writes a file to an HTTP response, every chunk written out before the next is read', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': data.length });
      void open(file)
        .then((fh) => writeChunks(res, fileChunks(fh, 0, data.length)))
        .then(() => res.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const body = Buffer.from(await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer());
      assert.deepEqual(body, data);
    } finally {
      server.close();
    }
  });

  it('ends with an error when the client goes away mid-body', async () => {
    async function* forever() {
      const chunk = Buffer.alloc(64 * 1024);
      for (;;) yield chunk;
    }
    let writing: Promise<void> | undefined;
    const server = http.createServer((_req, res) => {
      res.writeHead(200);
      writing = writeChunks(res, forever());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve) => {
        const req = http.get(`http://127.0.0.1:${port}/`, (res) =>
          res.once('data', () => {
            req.destroy();
            resolve();
          }),
        );
        req.on('error', () => undefined);
      });
      // Whichever comes first: the write fails (ECANCELED, EPIPE) or the response closes.
      await assert.rejects(writing!);
    } finally {
      server.close();
    }
  });
});
