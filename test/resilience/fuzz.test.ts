// Generated bad (and good) requests against a live file server process: paths, methods, headers,
// bodies, list queries, tokens, peer lists, catch-up calls and replication frames, sent as raw bytes.
// Every request must get an HTTP answer below 500 (apart from the documented exceptions), error
// answers must be JSON { error, message }, the process must survive, nothing may appear outside its
// data directory, and afterwards it must still store and serve files correctly.
// FC_FUZZ_SEED=<n> replays a run; FC_FUZZ_RUNS=<n> changes the number of requests (default 10,000).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { freePort } from '../harness/processes.ts';
import { TOKEN, TestCluster, api, type FileServerNode } from '../integration/fileserver/support/nodes.ts';
import { rawRequest, type RawAnswer } from '../integration/fileserver/support/raw.ts';
import { fuzzRequest, type FuzzContext, type FuzzRequest } from './support/fuzz-requests.ts';

const RUNS = Number(process.env['FC_FUZZ_RUNS'] ?? 10_000);
const BATCH = 8;
const SEED = process.env['FC_FUZZ_SEED'] ? Number(process.env['FC_FUZZ_SEED']) : Math.floor(Math.random() * 2 ** 31);

/** Every file under `dir`, relative to it, sorted. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

/**
 * The answers from the documented conditional-write flow that say "nothing decided, retry": the owner is a
 * fuzzed peer at a closed port, or a fuzzed peer list replaced the list between routing and checking.
 */
const OWNER_RETRY_CODES = ['owner_unreachable', 'not_owner', 'list_behind', 'not_caught_up', 'owner_changed', 'ownership_moved'];

/** The only answers allowed to be 5xx, for their documented reasons. */
function allowedServerError(req: FuzzRequest, res: RawAnswer): boolean {
  const code = (() => {
    try {
      return (JSON.parse(res.body) as { error?: string }).error;
    } catch {
      return undefined;
    }
  })();
  // A write that asked for peer acknowledgements while the fuzzed peer list names peers that do not answer.
  // Conditional writes wait for every peer.
  if (res.status === 504 && code === 'ack_timeout' && (req.asksPeerAcks || req.conditional)) return true;
  if (res.status === 503 && req.conditional && OWNER_RETRY_CODES.includes(code ?? '') && res.headers['retry-after'] !== undefined) return true;
  return false;
}

describe('fuzzed requests against a live file server', { timeout: 300_000 }, () => {
  const cluster = new TestCluster();
  let parent: string;
  let dataDir: string;
  let node: FileServerNode;
  let before_: string[];
  let ctx: FuzzContext;

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'fc-fuzz-'));
    dataDir = join(parent, 'data');
    node = await cluster.add({
      id: 'fuzz-target',
      dataDir,
      // Short ack timeout: fuzzed peer lists name peers that never answer.
      env: { FC_ACK_TIMEOUT_MS: '200', FC_MAX_BODY_BYTES: String(64 * 1024) },
    });
    before_ = await listTree(parent);
    // Peers the fuzzer may name: this node itself and closed ports on its own loopback address, so
    // that replication triggered by a fuzzed peer list never leaves this test.
    ctx = {
      selfId: node.id,
      token: TOKEN,
      peerUrls: [node.url, `http://${node.host}:${await freePort(node.host)}`, `http://${node.host}:${await freePort(node.host)}`],
    };
  });

  after(async () => {
    await cluster.close();
    await rm(parent, { recursive: true, force: true });
  });

  it(`answers ${RUNS} generated requests without a 5xx or a crash`, async (t) => {
    t.diagnostic(`seed ${SEED} (FC_FUZZ_SEED=${SEED} replays this run)`);
    const statuses = new Map<number, number>();
    const errors = new Map<string, number>();
    // Requests go in concurrent batches, so that they also race each other on the same paths.
    await fc.assert(
      fc.asyncProperty(fc.array(fuzzRequest(ctx), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        await Promise.all(batch.map((req) => check(req)));
      }),
      { numRuns: Math.ceil(RUNS / BATCH), seed: SEED, endOnFailure: true },
    );
    async function check(req: FuzzRequest): Promise<void> {
      const res = await rawRequest(node.host, node.port, req.bytes, 15_000);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 400) {
        const code = /"error":"([a-z_0-9]+)"/.exec(res.body)?.[1] ?? '?';
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
      assert.ok(res.status >= 100 && res.status < 600, `no valid status line: ${res.status}`);
      if (res.status >= 500) assert.ok(allowedServerError(req, res), `${res.status}: ${res.body}`);
      if (res.status >= 400 && req.method !== 'HEAD') {
        const j = JSON.parse(res.body) as { error?: unknown; message?: unknown };
        assert.equal(typeof j.error, 'string', `error answer without an error code: ${res.body}`);
        assert.equal(typeof j.message, 'string', `error answer without a message: ${res.body}`);
      }
      assert.equal(node.proc?.exitCode, null, 'the server process exited');
    }
    t.diagnostic(
      `error codes: ${[...errors]
        .sort((a, b) => b[1] - a[1])
        .map(([c, n]) => `${c}×${n}`)
        .join(' ')}`,
    );
    t.diagnostic(
      `statuses: ${[...statuses]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}×${n}`)
        .join(' ')}`,
    );
    assert.ok((statuses.get(200) ?? 0) + (statuses.get(201) ?? 0) > RUNS / 20, 'the generator reaches the success paths too');
    assert.ok([...statuses.keys()].filter((s) => s >= 400).length >= 8, 'the generator reaches many error classes');
  });

  it('left nothing outside its data directory', async () => {
    const now = await listTree(parent);
    assert.deepEqual(
      now.filter((p) => !p.startsWith('data')),
      before_.filter((p) => !p.startsWith('data')),
    );
    // Inside it, only the store's own names: user paths never become file-system paths.
    for (const p of now.filter((x) => x.startsWith('data/'))) {
      assert.match(
        p,
        /^data\/(objects(\/[0-9a-f]+(\.tmp)?)?|store\.db(-wal)?|lock(-journal)?|reserve|quarantine(\/[0-9a-f]+)?)$/,
        `unexpected file in the data directory: ${p}`,
      );
    }
  });

  it('still stores and serves files correctly afterwards', async () => {
    assert.equal(node.proc?.exitCode, null);
    // Restore a peer list without peers so that acknowledgements do not wait on fuzzed peers.
    const current = (await api(node, 'GET', '/internal/peers', { auth: true })).json<{ generation: number }>();
    assert.equal((await api(node, 'PUT', '/internal/peers', { auth: true, json: { generation: current.generation + 1, peers: [] } })).status, 200);
    assert.equal((await api(node, 'GET', '/healthz')).status, 200);
    const body = Buffer.from('after the storm\n');
    const put = await api(node, 'PUT', '/files/after/fuzz.txt', { body, headers: { 'content-sha256': createHash('sha256').update(body).digest('hex') } });
    assert.ok(put.status === 201 || put.status === 200, put.text);
    const got = await api(node, 'GET', '/files/after/fuzz.txt');
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, body);
    // Every listed file reads back with the hash the listing gives.
    let cursor: string | null = '';
    let checked = 0;
    while (cursor !== null) {
      const page: { entries: Array<{ path: string; sha256: string }>; nextCursor: string | null } = (
        await api(node, 'GET', `/files?limit=500${cursor ? `&cursor=${cursor}` : ''}`)
      ).json();
      for (const e of page.entries) {
        const r = await api(node, 'GET', `/files/${e.path.split('/').map(encodeURIComponent).join('/')}`);
        assert.equal(r.status, 200, `${JSON.stringify(e.path)} is listed but answers ${r.status}`);
        assert.equal(createHash('sha256').update(r.body).digest('hex'), e.sha256, `${JSON.stringify(e.path)} bytes differ from the listed hash`);
        checked++;
      }
      cursor = page.nextCursor;
    }
    assert.ok(checked > 0);
    // And what it stored survives a restart: the database it wrote under fuzzing loads back.
    const listing = async () => (await api(node, 'GET', '/files?limit=10000')).text;
    const beforeRestart = await listing();
    assert.equal(await node.kill('SIGTERM'), 0);
    await node.start();
    assert.equal(await listing(), beforeRestart);
    assert.deepEqual((await api(node, 'GET', '/files/after/fuzz.txt')).body, body);
  });
});
