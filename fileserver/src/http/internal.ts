import { timingSafeEqual } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { applyChangeStream, encodeChanges, type OutgoingChange } from '../replication/frames.ts';
import { closeAll, outgoingChange } from '../replication/outgoing.ts';
import { parsePeerList } from '../replication/peers.ts';
import type { Replicator } from '../replication/replicator.ts';
import { BUCKETS, bucketOf } from '../store/digest.ts';
import { contentOf } from '../store/state.ts';
import type { Store } from '../store/store.ts';
import { writeChunks } from '../streams.ts';
import { readJson } from './request.ts';

export interface InternalDeps {
  store: Store;
  replicator: Replicator;
  metrics: Metrics;
  nodeId: string;
  token: string;
}

function requireToken(token: string) {
  const expected = Buffer.from(`Bearer ${token}`);
  return async (ctx: Context, next: Next) => {
    const got = Buffer.from(ctx.get('authorization'));
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      ctx.set('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, 'unauthorized', 'a valid cluster bearer token is required');
    }
    await next();
  };
}

const BucketsBody = z.object({ buckets: z.array(z.number().int().min(0).max(BUCKETS - 1)).max(BUCKETS) }).strict();
const PathsBody = z.object({ paths: z.array(z.string().max(4096)).max(10_000) }).strict();

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, 'bad_request', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** The peer API: peer list, status, replication pushes, and the digest/manifest/fetch steps of catch-up. */
export function internalRouter({ store, replicator, metrics, nodeId, token }: InternalDeps): Router {
  const router = new Router({ prefix: '/internal' });
  router.use(requireToken(token));

  const listView = () => {
    const l = replicator.peerList();
    return { generation: l.generation, peers: l.peers };
  };

  router.get('/peers', (ctx) => {
    ctx.body = listView();
  });

  router.put('/peers', async (ctx) => {
    const parsed = parsePeerList(await readJson(ctx), nodeId);
    if (!parsed.ok) throw new HttpError(400, 'invalid_peer_list', parsed.message);
    const decision = await replicator.setPeerList(parsed.list);
    const current = replicator.peerList().generation;
    if (decision === 'stale') {
      throw new HttpError(409, 'stale_generation', `generation ${parsed.list.generation} is older than the current ${current}`, { generation: current });
    }
    if (decision === 'conflict') {
      throw new HttpError(409, 'generation_conflict', `generation ${current} is already held with a different list`, { generation: current });
    }
    ctx.body = listView();
  });

  router.get('/status', (ctx) => {
    ctx.body = {
      nodeId,
      ready: replicator.ready,
      catchingUp: replicator.catchingUp,
      generation: replicator.peerList().generation,
      peers: replicator.status().map(({ id, url, pendingChanges, pendingBytes, lagSeconds, up }) => ({ id, url, pendingChanges, pendingBytes, lagSeconds, up })),
    };
  });

  router.post('/replicate', async (ctx) => {
    const results = await applyChangeStream(store, ctx.req, (n) => metrics.receivedBytes.inc(n));
    ctx.body = { results };
  });

  router.get('/digest', (ctx) => {
    ctx.body = { buckets: store.state.digest.hex() };
  });

  router.post('/manifest', async (ctx) => {
    const wanted = new Set(parseBody(BucketsBody, await readJson(ctx)).buckets);
    // A new node differs in every bucket (each a valid index, so 256 distinct ones are all): then no
    // path needs hashing to see whether it is wanted.
    const all = wanted.size === BUCKETS;
    const entries = [];
    for (const e of store.state.entries.values()) {
      if (all || wanted.has(bucketOf(e.path))) entries.push({ path: e.path, version: e.version, deleted: e.deleted, sha256: contentOf(e) });
    }
    ctx.body = { entries };
  });

  router.post('/fetch', async (ctx) => {
    const start = performance.now();
    const { paths } = parseBody(PathsBody, await readJson(ctx, 16 * 1024 * 1024));
    const opened: FileHandle[] = [];
    async function* changes(): AsyncGenerator<OutgoingChange> {
      for (const path of paths) {
        const e = store.get(path);
        const change = e && (await outgoingChange(store, path, e, opened));
        if (change) yield change;
      }
    }
    // Answered on the raw response, like the push path: large files go out from one reused buffer each,
    // every chunk written out before the next is read. Through Koa a read stream allocated a fresh
    // buffer per chunk (a catch-up of GiBs was mostly garbage to collect), and a reused buffer cannot
    // go through a pipe, which queues chunks instead of waiting for them.
    ctx.respond = false;
    const res = ctx.res;
    res.writeHead(200, { 'content-type': 'application/x-filecluster-changes' });
    try {
      await writeChunks(res, encodeChanges(changes()));
      res.end();
    } catch {
      // The peer went away or a file could not be read: the cut stream tells the peer to retry.
      res.destroy();
    } finally {
      await closeAll(opened);
      metrics.requests.record('/internal/fetch', 'POST', 200, start);
    }
  });

  return router;
}
