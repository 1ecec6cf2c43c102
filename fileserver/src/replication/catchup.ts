import type { Metrics } from '../metrics.ts';
import type { Entry } from '../store/state.ts';
import type { Store } from '../store/store.ts';
import { differingBuckets } from '../store/digest.ts';
import { resolveIncoming, type Version } from '../store/version.ts';
import { receiveChangeStream, type AppliedChange } from './frames.ts';
import { peerJson, peerRequest, readBody } from './peer-client.ts';
import type { Peer } from './peers.ts';

const FETCH_CHUNK = 512;
const FETCH_STREAMS = 3;

export interface ManifestItem {
  path: string;
  version: Version;
  deleted: boolean;
}

/**
 * Which remote manifest entries to pull: every newer version, tombstones included, so that manifests
 * (and digests) become identical and a file deleted elsewhere cannot come back from this node later.
 */
export function entriesToPull(remote: ManifestItem[], local: (path: string) => Entry | undefined): ManifestItem[] {
  return remote.filter((r) => resolveIncoming(local(r.path)?.version, r.version) === 'apply');
}

/** Compares digests with one peer, lists only the differing buckets, and pulls what is newer there. Returns files repaired. */
export async function catchUpFrom(peer: Peer, token: string, store: Store, metrics: Metrics): Promise<number> {
  const remote = await peerJson<{ buckets: string[] }>(peer, token, { method: 'GET', path: '/internal/digest' });
  const diff = differingBuckets(store.state.digest.hex(), remote.buckets);
  if (diff.length === 0) return 0;
  const manifest = await peerJson<{ entries: ManifestItem[] }>(peer, token, {
    method: 'POST',
    path: '/internal/manifest',
    json: { buckets: diff },
  });
  const wanted = entriesToPull(manifest.entries, (p) => store.get(p));
  // Several fetch streams at once keep the network, the hashing and the fsyncs busy together; a
  // short list is split so that a few large files still travel side by side.
  const per = Math.max(1, Math.min(FETCH_CHUNK, Math.ceil(wanted.length / FETCH_STREAMS)));
  const chunks: string[][] = [];
  for (let i = 0; i < wanted.length; i += per) chunks.push(wanted.slice(i, i + per).map((w) => w.path));
  let repaired = 0;
  let next = 0;
  let failed = false;
  const count = (applied: AppliedChange[]) => {
    repaired += applied.filter((a) => a.result === 'applied').length;
  };
  const stream = async () => {
    // The next chunk is requested as soon as this one is read, while its commits finish: a stream never
    // idles through a journal fsync. Waiting for the chunk before bounds what is held to two per stream.
    const committing: Array<Promise<AppliedChange[]>> = [];
    try {
      while (!failed && next < chunks.length) {
        const paths = chunks[next++]!;
        const res = await peerRequest(peer, token, { method: 'POST', path: '/internal/fetch', json: { paths }, timeoutMs: 120_000 });
        try {
          if (res.statusCode !== 200) throw new Error(`peer ${peer.id} answered ${res.statusCode} to fetch: ${(await readBody(res)).toString().slice(0, 200)}`);
          committing.push((await receiveChangeStream(store, res, (n) => metrics.receivedBytes.inc(n))).applied);
        } catch (err) {
          res.destroy();
          throw err;
        }
        if (committing.length > 1) count(await committing.shift()!);
      }
      while (committing.length > 0) count(await committing.shift()!);
    } catch (err) {
      failed = true;
      // Nothing started is left running when catch-up reports the failure.
      await Promise.allSettled(committing);
      throw err;
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(FETCH_STREAMS, chunks.length) }, stream));
  const rejected = results.find((r) => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return repaired;
}
