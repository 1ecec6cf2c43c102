import type { ServerResponse } from 'node:http';

interface Answer {
  res: ServerResponse;
  status: number;
  headers: string[];
  body: Buffer | string | undefined;
}

/**
 * Complete answers held until the event loop has taken every request that arrived in the same turn, then
 * written one after the other (`setImmediate` runs right after the poll phase, so nothing waits for a
 * timer). Written one at a time as they were decided, small reads spent most of their time in the socket
 * write: each write woke the load generator on the other core, which then sent its next request into the
 * turn still running. Written together, one wake-up serves many answers and reads come in batches
 * (docs/design-notes.md). Pipelined requests on one connection still get their answers in order: Node
 * queues a later response behind an earlier one that has not finished.
 */
export function answerBatch(): (res: ServerResponse, status: number, headers: string[], body?: Buffer | string) => void {
  let queue: Answer[] = [];
  const flush = () => {
    const due = queue;
    queue = [];
    for (const a of due) {
      try {
        a.res.writeHead(a.status, a.headers).end(a.body);
      } catch {
        // Stored headers were checked when a client wrote the entry, so this is a bug; it must not take the
        // other answers down.
        a.res.destroy();
      }
    }
  };
  return (res, status, headers, body) => {
    if (queue.length === 0) setImmediate(flush);
    queue.push({ res, status, headers, body });
  };
}
