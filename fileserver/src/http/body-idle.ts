import type { IncomingMessage } from 'node:http';
import { HttpError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { unreadBody } from './errors.ts';

interface Watched {
  req: IncomingMessage;
  bytesRead: number;
  sinceMs: number;
}

/**
 * Ends requests whose body stops arriving. A request that declares a body is watched until the body is
 * in; once its connection received no byte for `idleMs`, the request is destroyed with a 408: the write
 * it feeds fails the way a cut-off upload does (nothing stored, the temporary object removed) and the
 * socket and buffers are freed. Progress is the connection's received byte count, so only a stall of
 * the client counts, never the wait for acknowledgements or a slow reader of the answer; a stall of
 * this server's own disk longer than the timeout (the body then waits in the socket) counts too, as it
 * does for nginx's client_body_timeout. One sweep timer serves every request: a timer per request
 * would cost the small writes of the hot path.
 */
export class BodyIdleWatch {
  private readonly watched = new Set<Watched>();
  private readonly idleMs: number;
  private readonly logger: Logger;
  private readonly timer: NodeJS.Timeout;

  constructor(idleMs: number, logger: Logger) {
    this.idleMs = idleMs;
    this.logger = logger;
    // A stall is noticed between idleMs and 1.25 idleMs after the last byte.
    this.timer = setInterval(() => this.sweep(Date.now()), Math.max(50, idleMs / 4));
    this.timer.unref();
  }

  watch(req: IncomingMessage): void {
    if (unreadBody(req)) this.watched.add({ req, bytesRead: req.socket.bytesRead, sinceMs: Date.now() });
  }

  private sweep(nowMs: number): void {
    for (const w of this.watched) {
      const { req } = w;
      if (req.complete || req.destroyed) {
        this.watched.delete(w);
        continue;
      }
      const bytesRead = req.socket.bytesRead;
      if (bytesRead !== w.bytesRead) {
        w.bytesRead = bytesRead;
        w.sinceMs = nowMs;
        continue;
      }
      if (nowMs - w.sinceMs < this.idleMs) continue;
      this.watched.delete(w);
      const seconds = this.idleMs / 1000;
      this.logger.info({ method: req.method, path: req.url, idleSeconds: seconds }, 'request body stalled; closing its connection');
      req.destroy(new HttpError(408, 'body_timeout', `no byte of the request body arrived for ${seconds} s`));
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.watched.clear();
  }
}
