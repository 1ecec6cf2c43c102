import Router from '@koa/router';
import { HttpError } from '../errors.ts';
import { clockSkewMessage } from '../replication/clock-skew.ts';
import type { ClockWatch } from '../replication/clock-watch.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { Store } from '../store/store.ts';

/**
 * /healthz (the process can still make writes durable) and /readyz (a catch-up completed with every
 * reachable peer, and client writes are taken: a node refusing them for clock skew leaves the Service,
 * so clients write through the others).
 */
export function healthRouter({
  store,
  replicator,
  clockWatch,
  maxClockDriftMs,
}: {
  store: Store;
  replicator: Replicator;
  clockWatch: ClockWatch;
  maxClockDriftMs: number;
}): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    if (!store.healthy()) throw new HttpError(503, 'storage_failed', 'a database commit failed; restart to recover from the durable state');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    if (!replicator.ready) throw new HttpError(503, 'not_ready', 'no catch-up has completed with every reachable peer yet');
    const clock = clockWatch.verdict();
    if (clock.refuse) throw new HttpError(503, 'clock_skew', clockSkewMessage(clock, maxClockDriftMs));
    ctx.body = { status: 'ready' };
  });
  return router;
}
