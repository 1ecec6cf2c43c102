import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { digestAnswer, manifestAnswer, writeFetchAnswer } from '../replication/catchup-server.ts';
import { FetchRequest, ManifestRequest } from '../replication/catchup-wire.ts';
import { applyChangeStream } from '../replication/frames.ts';
import { GENERATION_HEADER, parseGeneration, parsePeerList, type NodeStatus, type PeerClock } from '../../../contract/peer-api.ts';
import type { ClockWatch } from '../replication/clock-watch.ts';
import type { GenerationWatch } from '../replication/generation-watch.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { WriteFence } from '../store/fence.ts';
import type { Store } from '../store/store.ts';
import { readJson } from './request.ts';
import { OWNER_WRITE_PREFIX, OWNER_WRITE_ROUTE, type FileWrite } from './writes.ts';

export interface InternalDeps {
  store: Store;
  replicator: Replicator;
  clockWatch: ClockWatch;
  fence: WriteFence;
  metrics: Metrics;
  nodeId: string;
  /** The tokens a peer may present: the current one, and the previous one during a rotation. */
  accepted: readonly string[];
  generations: GenerationWatch;
  /** A conditional write forwarded to this node as the path's owner (writes.ts). */
  serveOwnedWrite: FileWrite;
}

function requireToken(accepted: readonly string[]) {
  const expected = accepted.map((t) => Buffer.from(`Bearer ${t}`));
  return async (ctx: Context, next: Next) => {
    const got = Buffer.from(ctx.get('authorization'));
    // Every candidate is compared, so the time taken says nothing about which one matched.
    const matches = expected.map((e) => got.length === e.length && timingSafeEqual(got, e));
    if (!matches.includes(true)) {
      ctx.set('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, 'unauthorized', 'a valid cluster bearer token is required');
    }
    await next();
  };
}

/** Notes the generation a peer sent, and sends this node's in every answer (see `GenerationWatch`). */
function exchangeGenerations(generations: GenerationWatch) {
  return async (ctx: Context, next: Next) => {
    const sent = ctx.get(GENERATION_HEADER);
    if (sent) {
      const generation = parseGeneration(sent);
      if (generation === undefined) throw new HttpError(400, 'bad_header', `${GENERATION_HEADER} must be a non-negative integer`);
      generations.observe(generation);
    }
    ctx.set(GENERATION_HEADER, String(generations.current));
    await next();
  };
}

const FenceBody = z.object({ leaving: z.boolean() }).strict();

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, 'bad_request', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** The peer API: peer list, status, replication pushes, and the routes of catch-up (served by `replication/catchup-server.ts`). */
export function internalRouter({ store, replicator, clockWatch, fence, metrics, nodeId, accepted, generations, serveOwnedWrite }: InternalDeps): Router {
  const router = new Router({ prefix: '/internal' });
  router.use(requireToken(accepted));
  router.use(exchangeGenerations(generations));

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

  const statusView = (): NodeStatus => {
    const clock = clockWatch.verdict();
    const offsets = new Map(clock.peers.map((p) => [p.peer, p.offsetMs / 1000]));
    return {
      nodeId,
      ready: replicator.ready,
      catchingUp: replicator.catchingUp,
      proxyingMisses: replicator.proxyingMisses,
      leaving: fence.leaving,
      generation: replicator.peerList().generation,
      syncedGeneration: replicator.syncedGeneration,
      stale: replicator.stale(),
      horizon: store.horizon(),
      clock: { refusingWrites: clock.refuse, versionAheadOfWallSeconds: clock.versionAheadOfWallMs / 1000 },
      peers: replicator.status().map(({ id, url, pendingChanges, pendingBytes, lagSeconds, up, catchup, catchupError }) => ({
        id,
        url,
        pendingChanges,
        pendingBytes,
        lagSeconds,
        up,
        catchup,
        ...(catchupError === undefined ? {} : { catchupError }),
        ...(offsets.has(id) ? { clockOffsetSeconds: offsets.get(id)! } : {}),
      })),
    };
  };

  router.get('/clock', (ctx) => {
    const answer: PeerClock = { nodeId, clockMs: Date.now() };
    ctx.body = answer;
  });

  router.get('/status', (ctx) => {
    ctx.body = statusView();
  });

  // The scale-down write barrier: the answer is a status read taken after every admitted write stored.
  router.put('/fence', async (ctx) => {
    const { leaving } = parseBody(FenceBody, await readJson(ctx));
    await fence.set(leaving);
    ctx.body = statusView();
  });

  router.post('/replicate', async (ctx) => {
    const results = await applyChangeStream(store, ctx.req, (n) => metrics.receivedBytes.inc(n));
    ctx.body = { results };
  });

  router.get('/digest', (ctx) => {
    ctx.body = digestAnswer(store, replicator.stale());
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

  const owned = (ctx: Context) => {
    ctx.respond = false;
    return serveOwnedWrite(ctx.req, ctx.res, ctx.path.slice(OWNER_WRITE_PREFIX.length));
  };
  router.put(OWNER_WRITE_ROUTE, owned);
  router.del(OWNER_WRITE_ROUTE, owned);

  return router;
}
