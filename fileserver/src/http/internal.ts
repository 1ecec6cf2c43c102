import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { digestAnswer, manifestAnswer, writeFetchAnswer } from '../replication/catchup-server.ts';
import { FetchRequest, ManifestRequest } from '../replication/catchup-wire.ts';
import { applyChangeStream } from '../replication/frames.ts';
import { parsePeerList } from '../replication/peers.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { Store } from '../store/store.ts';
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

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, 'bad_request', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** The peer API: peer list, status, replication pushes, and the routes of catch-up (served by `replication/catchup-server.ts`). */
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
      proxyingMisses: replicator.proxyingMisses,
      generation: replicator.peerList().generation,
      peers: replicator.status().map(({ id, url, pendingChanges, pendingBytes, lagSeconds, up, catchup, catchupError }) => ({
        id,
        url,
        pendingChanges,
        pendingBytes,
        lagSeconds,
        up,
        catchup,
        ...(catchupError === undefined ? {} : { catchupError }),
      })),
    };
  });

  router.post('/replicate', async (ctx) => {
    const results = await applyChangeStream(store, ctx.req, (n) => metrics.receivedBytes.inc(n));
    ctx.body = { results };
  });

  router.get('/digest', (ctx) => {
    ctx.body = digestAnswer(store);
  });

  router.post('/manifest', async (ctx) => {
    ctx.body = manifestAnswer(store, parseBody(ManifestRequest, await readJson(ctx)));
  });

  router.post('/fetch', async (ctx) => {
    const start = performance.now();
    const req = parseBody(FetchRequest, await readJson(ctx, 16 * 1024 * 1024));
    ctx.respond = false;
    try {
      await writeFetchAnswer(store, req, ctx.res);
    } finally {
      metrics.requests.record('/internal/fetch', 'POST', 200, start);
    }
  });

  return router;
}
