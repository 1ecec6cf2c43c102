import type { Metrics } from '../metrics.ts';
import { bucketOf, differingBuckets } from '../store/digest.ts';
import { contentOf, type Entry } from '../store/entry.ts';
import type { Store } from '../store/store.ts';
import { resolveIncoming } from '../store/version.ts';
import { compareCursors, decodeCursor, encodeCursor, MAX_PAGE_ENTRIES, type DigestAnswer, type ManifestItem, type ManifestPage } from './catchup-wire.ts';
import { applyChangeStream } from './frames.ts';
import { entriesToForget, mayPullAbsent, type AbsentRule } from './gc-horizon.ts';
import type { Peer } from '../../../contract/peer-api.ts';
import { peerJson, peerRequest, PeerRequestError, readBody, type PeerTokens } from './peer-client.ts';

const FETCH_CHUNK = 512;
const FETCH_STREAMS = 3;

/** The peer did not answer at all (refused, unroutable, timed out): it cannot be caught up from now. */
export class PeerUnreachableError extends Error {
  constructor(peer: string, cause: unknown) {
    super(`peer ${peer} is unreachable: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Which remote manifest entries to pull: every newer version, tombstones included, so that manifests
 * (and digests) become identical and a file deleted elsewhere cannot come back from this node later.
 * A file this node holds nothing for is pulled only as `mayPullAbsent` allows; the others are refused.
 */
export function entriesToPull(remote: ManifestItem[], local: (path: string) => Entry | undefined, absent: AbsentRule): { pull: ManifestItem[]; refused: ManifestItem[] } {
  const pull: ManifestItem[] = [];
  const refused: ManifestItem[] = [];
  for (const r of remote) {
    const l = local(r.path);
    if (l === undefined) (mayPullAbsent(r, absent) ? pull : refused).push(r);
    else if (resolveIncoming(l.version, r.version, contentOf(l), r.sha256) === 'apply') pull.push(r);
  }
  return { pull, refused };
}

/** Splits the paths to pull into fetch requests; a short list is split so that a few large files still travel side by side. */
export function fetchChunks(wanted: ManifestItem[]): string[][] {
  const per = Math.max(1, Math.min(FETCH_CHUNK, Math.ceil(wanted.length / FETCH_STREAMS)));
  const chunks: string[][] = [];
  for (let i = 0; i < wanted.length; i += per) chunks.push(wanted.slice(i, i + per).map((w) => w.path));
  return chunks;
}

/** The cursor a page answer goes on from; refuses one that does not move forward, which would loop for ever. */
export function nextCursor(after: string | undefined, page: ManifestPage): string | undefined {
  if (page.next !== undefined && after !== undefined && compareCursors(page.next, after) <= 0) {
    throw new Error(`the peer's manifest cursor went from ${JSON.stringify(after)} to ${JSON.stringify(page.next)}, not forward`);
  }
  return page.next;
}

/** The manifest of `buckets`, page by page, each with the cursors of the range it covers (`next` undefined: to the end). */
async function* manifestPages(
  peer: Peer,
  tokens: PeerTokens,
  buckets: number[],
  metrics: Metrics,
): AsyncGenerator<{ entries: ManifestItem[]; after: string | undefined; next: string | undefined }> {
  let after: string | undefined;
  do {
    let page: ManifestPage;
    try {
      page = await peerJson<ManifestPage>(peer, tokens, {
        method: 'POST',
        path: '/internal/manifest',
        json: after === undefined ? { buckets, limit: MAX_PAGE_ENTRIES } : { buckets, limit: MAX_PAGE_ENTRIES, after },
      });
    } catch (err) {
      // A node of the previous version refuses the page fields: it sends its manifest in one answer.
      if (!(after === undefined && err instanceof PeerRequestError && err.status === 400)) throw err;
      page = await peerJson<ManifestPage>(peer, tokens, { method: 'POST', path: '/internal/manifest', json: { buckets } });
    }
    metrics.catchupPages.inc();
    metrics.catchupCompared.inc(page.entries.length);
    const next = nextCursor(after, page);
    yield { entries: page.entries, after, next };
    after = next;
  } while (after !== undefined);
}

/** This node's entries of `buckets` after cursor `after` up to cursor `upTo` (both undefined: from the start, to the end). */
function* localRange(store: Store, buckets: number[], after: string | undefined, upTo: string | undefined): Generator<ManifestItem> {
  let from = after === undefined ? undefined : decodeCursor(after);
  for (;;) {
    const rows = store.manifestPage(buckets, from, MAX_PAGE_ENTRIES);
    for (const r of rows) {
      if (upTo !== undefined && compareCursors(encodeCursor(r.path), upTo) > 0) return;
      yield r;
    }
    if (rows.length < MAX_PAGE_ENTRIES) return;
    const last = rows.at(-1)!.path;
    from = { bucket: bucketOf(last), path: last };
  }
}

export interface CatchUpResult {
  /** Files and tombstones pulled. */
  repaired: number;
  /** The peer's files this node lacks that lie below its horizon, not pulled. */
  refused: number;
  /** Files this stale node forgot: the peer lacks them below its horizon (deleted and collected there). */
  forgotten: number;
}

/**
 * Compares digests with one peer, lists the differing buckets page by page, and pulls what is newer
 * there while the next page is asked for; files repaired are counted in the metric as they commit, so a
 * run that fails part-way still shows what it pulled, and the next run pulls only the rest. When this
 * node is stale and the peer is not, it also forgets what the peer deleted and collected, and pulls what
 * it lacks whatever its age (replication/gc-horizon.ts); after a complete run from a peer that is not
 * stale it adopts that peer's horizon. Throws `PeerUnreachableError` when the peer does not answer its
 * first request.
 */
export async function catchUpFrom(peer: Peer, tokens: PeerTokens, store: Store, metrics: Metrics, self: { stale: boolean }): Promise<CatchUpResult> {
  const res = await peerRequest(peer, tokens, { method: 'GET', path: '/internal/digest' }).catch((err: unknown) => {
    throw new PeerUnreachableError(peer.id, err);
  });
  const body = await readBody(res);
  if (res.statusCode !== 200) throw new PeerRequestError(`peer ${peer.id} answered ${res.statusCode} to digest: ${body.toString().slice(0, 200)}`, res.statusCode);
  const remote = JSON.parse(body.toString()) as DigestAnswer;
  const peerHorizon = remote.horizon ?? '';
  const trustPeer = self.stale && remote.stale !== true;
  const result: CatchUpResult = { repaired: 0, refused: 0, forgotten: 0 };
  const diff = differingBuckets(store.digestHex(), remote.buckets);
  if (diff.length === 0) {
    if (remote.stale !== true) await store.adoptHorizon(peerHorizon);
    return result;
  }
  const absent: AbsentRule = { horizon: store.horizon(), trustPeer, wanted: (p) => store.isWanted(p) };

  async function* chunks(): AsyncGenerator<string[]> {
    for await (const page of manifestPages(peer, tokens, diff, metrics)) {
      if (trustPeer && peerHorizon !== '') {
        const held = new Set(page.entries.map((e) => e.path));
        const forget = entriesToForget(localRange(store, diff, page.after, page.next), held, { peerHorizon, owedToPeer: (p) => store.owes(peer.id, p) });
        const done = (await Promise.all(forget.map((f) => store.forgetDeletedElsewhere(f.path, f.version)))).filter(Boolean).length;
        result.forgotten += done;
        metrics.catchupForgotten.inc(done);
      }
      const { pull, refused } = entriesToPull(page.entries, (p) => store.get(p), absent);
      result.refused += refused.length;
      metrics.catchupRefused.inc(refused.length);
      yield* fetchChunks(pull);
    }
  }
  // Several fetch streams at once keep the network, the hashing and the fsyncs busy together. They
  // share one generator (its calls queue), so the next page is asked for while the last chunks of the
  // current one are still being fetched.
  const work = chunks();
  let failed = false;
  const stream = async () => {
    while (!failed) {
      const next = await work.next();
      if (next.done) return;
      const res = await peerRequest(peer, tokens, { method: 'POST', path: '/internal/fetch', json: { paths: next.value }, timeoutMs: 120_000 });
      try {
        if (res.statusCode !== 200) throw new Error(`peer ${peer.id} answered ${res.statusCode} to fetch: ${(await readBody(res)).toString().slice(0, 200)}`);
        await applyChangeStream(
          store,
          res,
          (n) => metrics.receivedBytes.inc(n),
          (c) => {
            if (c.result !== 'applied') return;
            result.repaired++;
            metrics.filesRepaired.inc();
          },
        );
      } catch (err) {
        res.destroy();
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(
    Array.from({ length: FETCH_STREAMS }, () =>
      stream().catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  const rejected = results.find((r) => r.status === 'rejected');
  if (rejected) {
    await work.return(undefined);
    throw rejected.reason;
  }
  if (remote.stale !== true) await store.adoptHorizon(peerHorizon);
  return result;
}
