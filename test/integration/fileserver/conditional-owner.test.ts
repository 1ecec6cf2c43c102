import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { NodeStatus } from '../../../contract/peer-api.ts';
import { ownerOf } from '../../../fileserver/src/replication/owner.ts';
import { api, eventually, TestCluster, type FileServerNode } from './support/nodes.ts';

// Conditional writes (If-Match, If-None-Match) are a compare-and-swap across the cluster: every node
// routes them to the path's owner, which checks and commits them one at a time. Checked against real
// processes: concurrent conditional writes of one path sent to different nodes, a paused and a killed
// owner, and ownership moving to a joining node while swaps run.

const ENV = { FC_ACK_TIMEOUT_MS: '3000' };

/** Waits until every node has caught up from every peer of its current list (an owner acts only then). */
async function settled(nodes: FileServerNode[]): Promise<void> {
  await eventually('every node caught up at its generation', async () => {
    const s = await Promise.all(nodes.map(async (n) => (await api(n, 'GET', '/internal/status', { auth: true })).json<NodeStatus>()));
    return s.every((x) => x.syncedGeneration === x.generation);
  });
}

/** A path (with `prefix`) whose owner among `members` is `want`, and, if given, among `later.members` is `later.owner`. */
function pathOwnedBy(prefix: string, members: string[], want: string, later?: { members: string[]; owner: string }): string {
  for (let i = 0; ; i++) {
    const p = `${prefix}-${i}.txt`;
    if (ownerOf(p, members) === want && (!later || ownerOf(p, later.members) === later.owner)) return p;
  }
}

const put = (n: FileServerNode, path: string, body: string, headers: Record<string, string>) => api(n, 'PUT', `/files/${path}`, { body, headers });

describe('conditional writes are a cluster-wide compare-and-swap', () => {
  const cluster = new TestCluster();
  let nodes: FileServerNode[];
  const ids = () => nodes.map((n) => n.id);

  before(async () => {
    nodes = [];
    for (const id of ['cas-1', 'cas-2', 'cas-3']) nodes.push(await cluster.add({ id, env: ENV }));
    await cluster.pushPeers();
    await settled(nodes);
  });
  after(() => cluster.close());

  it('two concurrent create-only PUTs of one path on two nodes: exactly one 201, the other 412', async () => {
    for (let i = 0; i < 20; i++) {
      const path = `create/${i}.txt`;
      const [a, b] = await Promise.all([put(nodes[0]!, path, 'from-1', { 'if-none-match': '*' }), put(nodes[1]!, path, 'from-2', { 'if-none-match': '*' })]);
      assert.deepEqual([a.status, b.status].sort(), [201, 412], `${path}: ${a.status} ${a.text} / ${b.status} ${b.text}`);
      const winner = a.status === 201 ? 'from-1' : 'from-2';
      // Answered only once every peer holds it: each node serves the winner now.
      for (const n of nodes) assert.equal((await api(n, 'GET', `/files/${path}`)).text, winner, `${path} on ${n.id}`);
    }
  });

  it('N concurrent swaps from one ETag spread over the nodes: exactly one 200, the rest 412', async () => {
    for (let i = 0; i < 10; i++) {
      const path = `swap/${i}.txt`;
      const first = await put(nodes[0]!, path, 'v0', { 'x-filecluster-ack': 'all' });
      assert.equal(first.status, 201);
      const etag = first.headers.get('etag')!;
      const answers = await Promise.all(Array.from({ length: 6 }, (_, k) => put(nodes[k % 3]!, path, `swap-${k}`, { 'if-match': etag })));
      const statuses = answers.map((a) => a.status);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `${path}: ${statuses.join(' ')}`);
      assert.equal(statuses.filter((s) => s === 412).length, 5, `${path}: ${statuses.join(' ')}`);
      const won = answers.findIndex((a) => a.status === 200);
      for (const n of nodes) assert.equal((await api(n, 'GET', `/files/${path}`)).text, `swap-${won}`, `${path} on ${n.id}`);
    }
  });

  it('a conditional DELETE goes through the owner too: exactly one of two concurrent deletes from one ETag succeeds', async () => {
    const path = 'delete/one.txt';
    const r = await put(nodes[0]!, path, 'x', { 'x-filecluster-ack': 'all' });
    const etag = r.headers.get('etag')!;
    const [a, b] = await Promise.all([nodes[1]!, nodes[2]!].map((n) => api(n, 'DELETE', `/files/${path}`, { headers: { 'if-match': etag } })));
    // The loser finds the file gone (404) or, had it been re-created, another version (412).
    const statuses = [a!.status, b!.status].sort();
    assert.equal(statuses[0], 200, `${a!.text} / ${b!.text}`);
    assert.ok([404, 412].includes(statuses[1]!), `${a!.text} / ${b!.text}`);
  });

  it('with the owner paused (SIGSTOP), a conditional write anywhere is 503 naming it, and nothing is written, also after it resumes', async () => {
    const owner = nodes[2]!;
    const path = pathOwnedBy('paused', ids(), owner.id);
    const existing = pathOwnedBy('paused-existing', ids(), owner.id);
    const etag = (await put(nodes[0]!, existing, 'kept', { 'x-filecluster-ack': 'all' })).headers.get('etag')!;
    owner.pause(true);
    try {
      const answers = await Promise.all([
        put(nodes[0]!, path, 'lost', { 'if-none-match': '*' }),
        put(nodes[1]!, path, 'lost', { 'if-none-match': '*' }),
        put(nodes[0]!, existing, 'swapped', { 'if-match': etag }),
        api(nodes[1]!, 'DELETE', `/files/${existing}`, { headers: { 'if-match': etag } }),
      ]);
      for (const a of answers) {
        assert.equal(a.status, 503, a.text);
        assert.equal(a.json().error, 'owner_unreachable');
        assert.match(a.json<{ message: string }>().message, new RegExp(owner.id));
        assert.equal(a.headers.get('retry-after'), '1');
      }
    } finally {
      owner.pause(false);
    }
    // The owner now reads the forwarded requests its socket buffered while paused; their senders gave up.
    await sleep(1500);
    for (const n of nodes) {
      assert.equal((await api(n, 'GET', `/files/${path}`)).status, 404, `${path} on ${n.id}`);
      assert.equal((await api(n, 'GET', `/files/${existing}`)).text, 'kept', `${existing} on ${n.id}`);
    }
  });

  it('with the owner killed, a conditional write is 503 at once; after it restarts, conditional writes work again', async () => {
    const owner = nodes[1]!;
    const path = pathOwnedBy('killed', ids(), owner.id);
    await owner.kill();
    const r = await put(nodes[0]!, path, 'lost', { 'if-none-match': '*' });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json().error, 'owner_unreachable');
    assert.match(r.json<{ message: string }>().message, new RegExp(owner.id));
    // Unconditional writes do not need the owner.
    assert.equal((await put(nodes[0]!, 'killed-plain.txt', 'plain', {})).status, 201);
    await owner.start(ENV);
    await settled(nodes);
    for (const n of nodes) assert.equal((await api(n, 'GET', `/files/${path}`)).status, 404);
    const again = await eventually('a conditional write once the owner is back', async () => {
      const a = await put(nodes[2]!, path, 'now', { 'if-none-match': '*' });
      return a.status === 503 ? undefined : a;
    });
    assert.equal(again.status, 201, again.text);
  });
});

describe('conditional writes while ownership moves to a joining node', () => {
  const cluster = new TestCluster();
  let nodes: FileServerNode[];

  before(async () => {
    nodes = [];
    for (const id of ['mv-1', 'mv-2', 'mv-3']) nodes.push(await cluster.add({ id, env: ENV }));
    await cluster.pushPeers(nodes, nodes);
    await settled(nodes);
  });
  after(() => cluster.close());

  it('no two successes from one version while the peer list changes node by node', async () => {
    const joiner = await cluster.add({ id: 'mv-4', env: ENV });
    const oldMembers = nodes.map((n) => n.id);
    const newMembers = [...oldMembers, joiner.id];
    // Paths whose owner moves from each old member to the joiner.
    const paths = oldMembers.flatMap((m) => Array.from({ length: 4 }, (_, i) => pathOwnedBy(`move-${m}-${i}`, oldMembers, m, { members: newMembers, owner: joiner.id })));
    const current = new Map<string, string>();
    for (const p of paths) {
      const r = await put(nodes[0]!, p, 'v0', { 'x-filecluster-ack': 'all' });
      assert.equal(r.status, 201);
      current.set(p, r.headers.get('etag')!);
    }
    /** For each path and ETag swapped from: how many swaps succeeded. */
    const successes = new Map<string, number>();
    const lastWin = new Map<string, string>();
    /** Per path, the ETags of swaps answered with an unknown outcome (stored, not confirmed) since its last win. */
    const unknownSinceWin = new Map<string, string[]>();
    const outcomes = new Map<number, number>();
    let stop = false;
    const swapper = async (p: string) => {
      for (let round = 0; !stop; round++) {
        const from = current.get(p)!;
        const answers = await Promise.all(nodes.map((n, k) => put(n, p, `${n.id}-${round}-${k}`, { 'if-match': from })));
        for (const a of answers) outcomes.set(a.status, (outcomes.get(a.status) ?? 0) + 1);
        // A 504 ack_timeout or a 503 ownership_moved stored the swap without confirming it: it may be
        // what the cluster ends on if no later swap wins.
        const unknown = answers.filter((a) => a.status >= 500 && a.headers.get('etag')).map((a) => a.headers.get('etag')!);
        const won = answers.filter((a) => a.status === 200);
        const key = `${p} ${from}`;
        successes.set(key, (successes.get(key) ?? 0) + won.length);
        unknownSinceWin.get(p)?.push(...unknown);
        if (won.length > 0) {
          current.set(p, won[0]!.headers.get('etag')!);
          lastWin.set(p, won[0]!.headers.get('etag')!);
          unknownSinceWin.set(p, []);
        } else if (answers.every((a) => a.status === 412)) {
          // Our ETag is outdated (a swap answered 503/504 may have landed): start from what the cluster holds now.
          current.set(p, (await api(nodes[0]!, 'GET', `/files/${p}`)).headers.get('etag')!);
        } else {
          await sleep(50);
        }
      }
    };
    const running = Promise.all(paths.map(swapper));
    await sleep(500);
    // The operator's way: the new list reaches one node at a time; an old owner learns of it last.
    const generation = 2;
    const list = { generation, peers: [...nodes, joiner].map((n) => ({ id: n.id, url: n.url })) };
    for (const n of [nodes[0]!, joiner, nodes[1]!, nodes[2]!]) {
      const r = await api(n, 'PUT', '/internal/peers', { json: list, auth: true });
      assert.equal(r.status, 200, r.text);
      await sleep(300);
    }
    await settled([...nodes, joiner]);
    await sleep(1500);
    stop = true;
    await running;

    const doubled = [...successes].filter(([, n]) => n > 1);
    assert.deepEqual(doubled, [], `swaps that succeeded twice from one version; outcomes ${JSON.stringify([...outcomes])}`);
    assert.ok((outcomes.get(200) ?? 0) > paths.length, `too few swaps succeeded to mean anything: ${JSON.stringify([...outcomes])}`);
    // Every node ends on one value: the last swap that succeeded, or a swap stored after it whose outcome
    // was reported unknown. Anything else means an acknowledged swap was overwritten.
    for (const p of paths) {
      const win = lastWin.get(p);
      if (win === undefined) continue;
      const allowed = [win, ...(unknownSinceWin.get(p) ?? [])];
      let tags: (string | null)[] = [];
      await eventually(`${p} converged on one value`, async () => {
        tags = await Promise.all([...nodes, joiner].map(async (n) => (await api(n, 'GET', `/files/${p}`)).headers.get('etag')));
        return tags.every((t) => t === tags[0]);
      });
      assert.ok(
        allowed.includes(tags[0]!),
        `${p} ended on ${tags[0]}, not the last successful swap ${win} nor a later unknown outcome ${JSON.stringify(allowed.slice(1))}`,
      );
    }
  });
});
