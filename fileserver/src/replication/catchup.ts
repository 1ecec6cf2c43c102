import type { Metrics } from '../metrics.ts';
import { differingBuckets } from '../store/digest.ts';
import { contentOf, type Entry } from '../store/entry.ts';
import type { Store } from '../store/store.ts';
import { resolveIncoming } from '../store/version.ts';
import { compareCursors, MAX_PAGE_ENTRIES, type DigestAnswer, type ManifestItem, type ManifestPage } from './catchup-wire.ts';
import { applyChangeStream } from './frames.ts';
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
 */
export function entriesToPull(remote: ManifestItem[], local: (path: string) => Entry | undefined): ManifestItem[] {
  return remote.filter((r) => {
    const l = local(r.path);
    return resolveIncoming(l?.version, r.version, l && contentOf(l), r.sha256) === 'apply';
  });
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

/** The manifest entries of `buckets`, page by page. */
async function* manifestPages(peer: Peer, tokens: PeerTokens, buckets: number[], metrics: Metrics): AsyncGenerator<ManifestItem[]> {
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
    yield page.entries;
    after = nextCursor(after, page);
  } while (after !== undefined);
}

/**
 * Compares digests with one peer, lists the differing buckets page by page, and pulls what is newer
 * there while the next page is asked for. Returns files repaired; each is counted in the metric as it
 * commits, so a run that fails part-way still shows what it pulled, and the next run pulls only the
 * rest. Throws `PeerUnreachableError` when the peer does not answer its first request.
 */
export async function catchUpFrom(peer: Peer, tokens: PeerTokens, store: Store, metrics: Metrics): Promise<number> {
  const res = await peerRequest(peer, tokens, { method: 'GET', path: '/internal/digest' }).catch((err: unknown) => {
    throw new PeerUnreachableError(peer.id, err);
  });
  const body = await readBody(res);
  if (res.statusCode !== 200) throw new PeerRequestError(`peer ${peer.id} answered ${res.statusCode} to digest: ${body.toString().slice(0, 200)}`, res.statusCode);
  const remote = JSON.parse(body.toString()) as DigestAnswer;
  const diff = differingBuckets(store.digestHex(), remote.buckets);
  if (diff.length === 0) return 0;

  async function* chunks(): AsyncGenerator<string[]> {
    for await (const entries of manifestPages(peer, tokens, diff, metrics)) yield* fetchChunks(entriesToPull(entries, (p) => store.get(p)));
  }
  // Several fetch streams at once keep the network, the hashing and the fsyncs busy together. They
  // share one generator (its calls queue), so the next page is asked for while the last chunks of the
  // current one are still being fetched.
  const work = chunks();
  let repaired = 0;
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
            repaired++;
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
  return repaired;
}
