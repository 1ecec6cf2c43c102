import Router from '@koa/router';
import { HttpError } from '../errors.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { Store } from '../store/store.ts';

/** /healthz (the process can still make writes durable) and /readyz (a catch-up completed with every reachable peer). */
export function healthRouter({ store, replicator }: { store: Store; replicator: Replicator }): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    if (!store.healthy()) throw new HttpError(503, 'storage_failed', 'a database commit failed; restart to recover from the durable state');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    if (!replicator.ready) throw new HttpError(503, 'not_ready', 'no catch-up has completed with every reachable peer yet');
    ctx.body = { status: 'ready' };
  });
  return router;
}
