import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AckMode } from '../../../contract/fileserver-settings.ts';
import type { Config } from '../config.ts';
import { HttpError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RequestMetrics } from '../metrics.ts';
import type { ClockWatch } from '../replication/clock-watch.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { WriteFence } from '../store/fence.ts';
import type { FileEntry } from '../store/entry.ts';
import { etagOf, type Store } from '../store/store.ts';
import { versionTimeMs, type Version } from '../store/version.ts';
import { admitByClock } from './clock-gate.ts';
import { sendRawError } from './errors.ts';
import { FILE_ROUTE } from './reads.ts';
import { ackModeOf, conditionsOf, contentLengthOf, contentTypeOf, filePathOf, sha256Of } from './request.ts';

/** How listings and write answers describe a file. */
export function describeEntry(e: FileEntry) {
  return { path: e.path, size: e.size, sha256: e.sha256, version: e.version, modified: new Date(versionTimeMs(e.version)).toISOString() };
}

export interface WriteDeps {
  store: Store;
  replicator: Replicator;
  clockWatch: ClockWatch;
  fence: WriteFence;
  config: Config;
  logger: Logger;
  requests: RequestMetrics;
}

export type FileWrites = ReturnType<typeof fileWrites>;

/**
 * PUT and DELETE of `/files/<path>`: the one implementation, on the raw request and response, like
 * reads (reads.ts). Writes are the other half of the hot path; Koa's context, middleware and router
 * cost as much per small write as storing it. The API listener calls it for the plain spelling of the
 * URL, the files router for every other spelling. It answers every outcome and records the request.
 */
export function fileWrites({ store, replicator, clockWatch, fence, config, logger, requests }: WriteDeps) {
  /** Answers per the requested ack level once the write is durable here and owed to every peer. */
  async function acknowledge(
    req: IncomingMessage,
    res: ServerResponse,
    mode: AckMode,
    path: string,
    version: Version,
    body: object,
    status: number,
    headers: string[],
  ): Promise<number> {
    replicator.notifyLocalWrite();
    const { acked, required } = await replicator.waitForAcks(path, version, mode, config.ackTimeoutMs);
    if (acked < required) {
      const err = new HttpError(504, 'ack_timeout', `stored locally, but only ${acked} of ${required} peers acknowledged in time; replication continues`, {
        acked,
        required,
        version,
      });
      return sendRawError(logger, req, res, err, headers);
    }
    const json = JSON.stringify({ ...body, acked, required });
    res.writeHead(status, [...headers, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(Buffer.byteLength(json))]).end(json);
    return status;
  }

  async function put(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<number> {
    const path = filePathOf(rawPath);
    const h = req.headers;
    const size = contentLengthOf(h, config.maxBodyBytes);
    const sha256 = sha256Of(h);
    const contentType = contentTypeOf(h);
    const mode = ackModeOf(h, config.defaultAck); // a bad header is rejected before the body is read
    const existed = store.get(path)?.deleted === false;
    const e = await fence.admit(() => store.put(path, req, size, { ...conditionsOf(h), contentType, ...(sha256 ? { sha256 } : {}) }));
    return acknowledge(req, res, mode, path, e.version, describeEntry(e), existed ? 200 : 201, ['ETag', etagOf(e)]);
  }

  async function del(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<number> {
    const path = filePathOf(rawPath);
    const mode = ackModeOf(req.headers, config.defaultAck);
    const t = await fence.admit(() => store.delete(path, conditionsOf(req.headers)));
    return acknowledge(req, res, mode, path, t.version, { path, version: t.version, deleted: true }, 200, []);
  }

  /** Answers a PUT or DELETE of the still-encoded file path `rawPath` and records it. */
  return async function serveWrite(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    const started = performance.now();
    const method = req.method!;
    let status: number;
    try {
      await admitByClock(clockWatch, config.maxClockDriftMs);
      status = await (method === 'PUT' ? put(req, res, rawPath) : del(req, res, rawPath));
    } catch (err) {
      status = sendRawError(logger, req, res, err);
    }
    requests.record(FILE_ROUTE, method, status, started);
  };
}
