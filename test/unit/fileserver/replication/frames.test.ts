import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ByteReader, applyChangeStream, encodeChanges, type OutgoingChange } from '../../../../fileserver/src/replication/frames.ts';
import type { ByteSource, ChangeHeader, RemoteResult, Store } from '../../../../fileserver/src/store/store.ts';
import { encodeVersion } from '../../../../fileserver/src/store/version.ts';
import type { HttpError } from '../../../../fileserver/src/errors.ts';

const VERSION = encodeVersion({ ms: 1, counter: 0, nodeId: 'n1' });

/** FAKE store: records what it is given and commits only when the test says so, so commits can be held open. */
class HeldStore {
  readonly got: Array<{ path: string; bytes: Buffer }> = [];
  private readonly held: Array<() => void> = [];
  fail: string | undefined;

  async applyRemote(h: ChangeHeader, body: ByteSource): Promise<RemoteResult> {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c);
    this.got.push({ path: h.path, bytes: Buffer.concat(chunks) });
    await new Promise<void>((resolve) => this.held.push(resolve));
    if (h.path === this.fail) throw new Error(`commit of ${h.path} failed`);
    return 'applied';
  }

  applyRemoteBatch(changes: Array<{ h: ChangeHeader; data: Buffer }>): Promise<Array<RemoteResult | Error>> {
    return Promise.all(changes.map(({ h, data }) => this.applyRemote(h, [data]).catch((err: Error) => err)));
  }

  release(): void {
    for (const r of this.held.splice(0)) r();
  }

  get waiting(): number {
    return this.held.length;
  }
}

const change = (path: string, size: number): OutgoingChange => ({
  header: { path, version: VERSION, deleted: false, size, sha256: '', contentType: 'application/octet-stream' },
  body: Buffer.alloc(size, path.length),
});

/** One frame around any JSON value, as a peer that does not follow the format might send it. */
async function* rawFrame(header: unknown, body: string): AsyncGenerator<Buffer> {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  yield Buffer.concat([len, json, Buffer.from(body)]);
}

async function* source(changes: OutgoingChange[], cutAfter?: number): AsyncGenerator<Buffer> {
  async function* each() {
    yield* changes;
  }
  let sent = 0;
  for await (const b of encodeChanges(each())) {
    if (cutAfter !== undefined && sent + b.length > cutAfter) {
      yield b.subarray(0, cutAfter - sent);
      return;
    }
    sent += b.length;
    yield b;
  }
}

describe('applyChangeStream', () => {
  it('hands every file to the store with its bytes and answers once all of them are committed', async () => {
    const store = new HeldStore();
    const changes = [change('a', 10), change('b', 70 * 1024), change('c', 0)];
    let settled = false;
    const applied = applyChangeStream(store as unknown as Store, Readable.from(source(changes)), () => undefined).then((r) => {
      settled = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      store.got.map((g) => [g.path, g.bytes.length]),
      [['a', 10], ['b', 70 * 1024], ['c', 0]],
    );
    assert.equal(settled, false, 'no commit has finished yet');
    store.release();
    assert.deepEqual(
      (await applied).map((a) => a.path),
      ['a', 'b', 'c'],
    );
  });

  it('reads frames and files split at any byte, and files spanning many chunks, with their exact bytes', async () => {
    const files = [change('a', 10), change('bb', 5000), change('c', 0), change('dd', 70 * 1024), change('e', 1)];
    let whole = Buffer.alloc(0);
    for await (const b of source(files)) whole = Buffer.concat([whole, b]);
    for (const piece of [1, 3, 4096, 65536]) {
      const store = new HeldStore();
      async function* pieces(): AsyncGenerator<Buffer> {
        for (let i = 0; i < whole.length; i += piece) yield whole.subarray(i, i + piece);
      }
      const applied = applyChangeStream(store as unknown as Store, Readable.from(pieces()), () => undefined);
      const release = setInterval(() => store.release(), 1);
      try {
        assert.equal((await applied).length, files.length);
      } finally {
        clearInterval(release);
      }
      assert.deepEqual(
        store.got.map((g) => [g.path, g.bytes]),
        files.map((f) => [f.header.path, f.body as Buffer]),
        `pieces of ${piece} bytes`,
      );
    }
  });

  it('a failed commit fails the stream only after every other commit settled', async () => {
    const store = new HeldStore();
    store.fail = 'a';
    const applied = applyChangeStream(store as unknown as Store, Readable.from(source([change('a', 1), change('b', 1)])), () => undefined);
    await new Promise((r) => setTimeout(r, 20));
    store.release();
    await assert.rejects(applied, /commit of a failed/);
    assert.equal(store.waiting, 0);
  });

  it('a stream cut inside a frame rejects, after the commits already started have settled and been reported', async () => {
    const store = new HeldStore();
    const changes = [change('a', 100), change('b', 100)];
    let first = 0;
    for await (const b of source([changes[0]!])) first += b.length;
    // Cut inside the second frame, so the first file's commit has started.
    const reported: string[] = [];
    const received = applyChangeStream(store as unknown as Store, Readable.from(source(changes, first + 10)), () => undefined, (c) => reported.push(`${c.path} ${c.result}`));
    let rejected = false;
    received.catch(() => (rejected = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rejected, false, 'still waiting for the commit of a');
    assert.deepEqual(reported, []);
    store.release();
    await assert.rejects(received, /ended in the middle of a frame|ended before a file/);
    assert.deepEqual(reported, ['a applied'], 'the file committed before the cut is reported');
  });

  it('refuses a malformed header with 400 bad_frame, naming the field, and stores nothing', async () => {
    const good = { path: 'a', version: VERSION, deleted: false, size: 1, sha256: '', contentType: 'text/plain' };
    const cases: Array<[unknown, RegExp]> = [
      [null, /not an object/],
      [[1, 2], /path is not a string/],
      [{ ...good, path: 3 }, /path is not a string/],
      [{ ...good, path: '../a' }, /bad path/],
      [{ ...good, version: 'yesterday' }, /version is not a version/],
      [{ ...good, deleted: 'no' }, /deleted is not a boolean/],
      [{ ...good, size: -1 }, /size is not a byte count/],
      [{ ...good, size: 1.5 }, /size is not a byte count/],
      [{ ...good, size: '1' }, /size is not a byte count/],
      [{ ...good, size: 2 ** 53 }, /size is not a byte count/],
      [{ ...good, sha256: 'A'.repeat(64) }, /sha256 is not a hex SHA-256/],
      [{ ...good, contentType: 'x'.repeat(257) }, /contentType is not a string/],
      [{ ...good, deleted: true }, /a delete carries no bytes/],
    ];
    for (const [header, message] of cases) {
      const store = new HeldStore();
      await assert.rejects(
        applyChangeStream(store as unknown as Store, Readable.from(rawFrame(header, 'x')), () => undefined),
        (err: HttpError) => err.status === 400 && err.code === 'bad_frame' && message.test(err.message),
        JSON.stringify(header),
      );
      assert.equal(store.got.length, 0);
    }
  });

  it('passes on only the header fields it knows', async () => {
    const store = new HeldStore();
    const header = { path: 'a', version: VERSION, deleted: false, size: 1, sha256: '', contentType: 'text/plain', blob: 'x', extra: 1 };
    const seen: ChangeHeader[] = [];
    const capture = {
      applyRemoteBatch: (changes: Array<{ h: ChangeHeader; data: Buffer }>) => {
        seen.push(...changes.map((c) => c.h));
        return store.applyRemoteBatch(changes);
      },
    };
    const applied = applyChangeStream(capture as unknown as Store, Readable.from(rawFrame(header, 'x')), () => undefined);
    const release = setInterval(() => store.release(), 1);
    try {
      await applied;
    } finally {
      clearInterval(release);
    }
    assert.deepEqual(seen, [{ path: 'a', version: VERSION, deleted: false, size: 1, sha256: '', contentType: 'text/plain' }]);
  });

  it('hands the store NFC paths, and answers with the path as the sender spelled it', async () => {
    const store = new HeldStore();
    const nfd = ['cafe\u0301.txt', 'gro\u00dfe/a\u0308.bin'];
    const applied = applyChangeStream(store as unknown as Store, Readable.from(source([change(nfd[0]!, 3), change(nfd[1]!, 70 * 1024)])), () => undefined);
    const release = setInterval(() => store.release(), 1);
    let answer;
    try {
      answer = await applied;
    } finally {
      clearInterval(release);
    }
    assert.deepEqual(store.got.map((g) => g.path).sort(), ['caf\u00e9.txt', 'gro\u00dfe/\u00e4.bin']);
    assert.deepEqual(answer.map((a) => a.path).sort(), [...nfd].sort());
  });
});

describe('ByteReader', () => {
  it('stops reading ahead at about a MiB and goes on once bytes are taken', async () => {
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024, 1));
        if (produced >= 8 * 1024 * 1024) this.push(null);
      },
    });
    const reader = new ByteReader(source);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(source.isPaused(), 'paused');
    assert.ok(produced <= 1.5 * 1024 * 1024, `read ahead ${produced} bytes before anything was taken`);
    let taken = 0;
    for (;;) {
      const b = await reader.readExact(128 * 1024);
      if (!b) break;
      taken += b.length;
    }
    assert.equal(taken, 8 * 1024 * 1024);
  });

  it('ends cleanly between frames, but fails a read the stream cut short', async () => {
    const clean = new ByteReader(Readable.from([Buffer.from('abcd')]));
    assert.deepEqual(await clean.readExact(4), Buffer.from('abcd'));
    assert.equal(await clean.readExact(4), undefined);
    const short = new ByteReader(Readable.from([Buffer.from('abc')]));
    await assert.rejects(short.readExact(4), /ended in the middle of a frame/);
  });

  it('fails with the error of a broken source, and when the source closes before its end', async () => {
    const broken = new Readable({ read() {} });
    const reader = new ByteReader(broken);
    broken.push(Buffer.from('ab'));
    setTimeout(() => broken.destroy(new Error('connection reset')), 5);
    await assert.rejects(reader.readExact(4), /connection reset/);

    const cut = new Readable({ read() {} });
    const reader2 = new ByteReader(cut);
    setTimeout(() => cut.destroy(), 5);
    await assert.rejects(reader2.readExact(1), /cut off/);
  });
});
