import type { RequestListener } from 'node:http';
import Koa from 'koa';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { BodyIdleWatch } from './http/body-idle.ts';
import { errorMiddleware, methodNotAllowed } from './http/errors.ts';
import { filesRouter } from './http/files.ts';
import { healthRouter } from './http/health.ts';
import { internalRouter } from './http/internal.ts';
import { fileReads, plainFileTarget } from './http/reads.ts';
import { fileWrites } from './http/writes.ts';
import { ClockWatch } from './replication/clock-watch.ts';
import { GenerationWatch } from './replication/generation-watch.ts';
import { PeerTokens } from './replication/peer-client.ts';
import { samePeers } from './replication/peers.ts';
import { Replicator } from './replication/replicator.ts';
import { WriteFence } from './store/fence.ts';
import { Store } from './store/store.ts';
import { HybridClock } from './store/version.ts';

/** Rest between two scrub passes: each re-reads every stored byte. */
const SCRUB_REST_MS = 6 * 3600 * 1000;

export interface FileServer {
  /** Files API, peer API, /healthz and /readyz. */
  api: RequestListener;
  /** Prometheus /metrics. */
  metricsApi: RequestListener;
  store: Store;
  replicator: Replicator;
  metrics: Metrics;
  /** Stops replication and closes the store; call after the HTTP servers stopped taking requests. */
  close(): Promise<void>;
}

/** Loads the store and wires the HTTP apps; starting to listen is left to the caller. */
export async function createFileServer(config: Config, logger: Logger): Promise<FileServer> {
  const metrics = createMetrics();
  const clock = new HybridClock(config.nodeId, Date.now, config.maxClockDriftMs);
  const store = await Store.open({
    dataDir: config.dataDir,
    clock,
    logger,
    metrics,
    initialPeers: config.staticPeers,
  });
  // A list pushed earlier (higher generation) survives restarts; the static list only seeds a fresh node.
  if (store.peerList().generation === 0 && !samePeers(store.peerList(), config.staticPeers)) await store.setPeers(config.staticPeers);
  const fence = await WriteFence.open(config.dataDir);
  const counts = store.counts();
  logger.info({ leaving: fence.leaving, files: counts.liveFiles, tombstones: counts.tombstones, generation: store.peerList().generation }, 'store loaded');

  const generations = new GenerationWatch(() => store.peerList().generation);
  const tokens = new PeerTokens(config.token, config.previousToken, generations);
  const replicator = new Replicator({
    store,
    nodeId: config.nodeId,
    tokens,
    generations,
    metrics,
    logger,
    catchupIntervalMs: config.catchupIntervalMs,
    tombstoneRetentionMs: config.tombstoneRetentionMs,
  });
  const clockWatch = new ClockWatch({ peers: () => replicator.peerList().peers, tokens, clock, maxDriftMs: config.maxClockDriftMs, logger });
  metrics.setSource({
    peers: () => {
      const offsets = new Map(clockWatch.verdict().peers.map((p) => [p.peer, p.offsetMs / 1000]));
      return replicator.status().map((p) => ({ ...p, clockOffsetSeconds: offsets.get(p.id) }));
    },
    clock: () => {
      const v = clockWatch.verdict();
      return { refusingWrites: v.refuse, versionAheadOfWallSeconds: v.versionAheadOfWallMs / 1000 };
    },
    generation: () => replicator.peerList().generation,
    tombstones: () => store.counts().tombstones,
    stale: () => replicator.stale(),
    storeBytes: () => store.counts().liveBytes,
    storeFiles: () => store.counts().liveFiles,
  });

  const app = new Koa();
  app.silent = true;
  app.on('error', (err: Error) => logger.debug({ err: err.message }, 'response stream error'));
  app.use(async (ctx, next) => {
    const start = performance.now();
    ctx.res.once('close', () => {
      // A handler that answered on the raw response (respond = false) recorded the request itself.
      if (ctx.respond === false) return;
      const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      metrics.requests.record(typeof matched === 'string' ? matched : 'unmatched', ctx.method, ctx.status, start);
    });
    await next();
  });
  app.use(errorMiddleware(logger));
  const serveRead = fileReads({ store, replicator, tokens, logger, requests: metrics.requests, koa: app });
  const { serveWrite, serveOwnedWrite } = fileWrites({ store, replicator, clockWatch, fence, config, logger, requests: metrics.requests, tokens });
  // The files router comes first: a file request is answered there without passing the other routers.
  const routers = [
    filesRouter({ store, serveRead, serveWrite }),
    healthRouter({ store, replicator, clockWatch, maxClockDriftMs: config.maxClockDriftMs }),
    internalRouter({ store, replicator, clockWatch, fence, metrics, nodeId: config.nodeId, accepted: tokens.accepted, generations, serveOwnedWrite }),
  ];
  for (const router of routers) {
    app.use(router.routes());
    app.use(methodNotAllowed(router));
  }

  const metricsApi: RequestListener = (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not_found', message: 'only GET /metrics is served here' }));
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal', message: err.message })),
    );
  };

  // File reads and writes, the bulk of the traffic, skip Koa: its context, middleware and router cost
  // about as much per request as a small read or write itself. Everything else, and file requests
  // spelled any other way, go through Koa.
  const koaApi = app.callback();
  const bodyIdle = new BodyIdleWatch(config.bodyIdleTimeoutMs, logger);
  const api: RequestListener = (req, res) => {
    bodyIdle.watch(req);
    const method = req.method;
    const serve = method === 'GET' || method === 'HEAD' ? serveRead : method === 'PUT' || method === 'DELETE' ? serveWrite : undefined;
    if (serve) {
      const rawPath = plainFileTarget(req.url!);
      if (rawPath !== undefined) return void serve(req, res, rawPath);
    }
    koaApi(req, res);
  };

  replicator.start();
  clockWatch.start();
  store.startScrub(config.scrubBytesPerSecond, SCRUB_REST_MS);
  return {
    api,
    metricsApi,
    store,
    replicator,
    metrics,
    async close() {
      bodyIdle.stop();
      clockWatch.stop();
      await replicator.stop();
      await store.close();
    },
  };
}
