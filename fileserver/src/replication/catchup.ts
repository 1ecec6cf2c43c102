import type { Metrics } from '../metrics.ts';
import { contentOf, type Entry } from '../store/entry.ts';
import type { Store } from '../store/store.ts';
import { differingBuckets } from '../store/digest.ts';
import { resolveIncoming, type Version } from '../store/version.ts';
import { applyChangeStream } from './frames.ts';
import { peerJson, peerRequest, readBody } from './peer-client.ts';
import type { Peer } from './peers.ts';

const FETCH_CHUNK = 512;
const FETCH_STREAMS = 3;

export interface ManifestItem {
  path: string;
  version: Version;
  deleted: boolean;
  /** The file's SHA-256 ('' for a delete); absent from peers of earlier releases. */
  sha256?: string;
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

/**
 * Compares digests with one peer, lists only the differing buckets, and pulls what is newer there.
 * Returns files repaired; each is counted in the metric as it commits, so a run that fails part-way
 * still shows what it pulled.
 */
export async function catchUpFrom(peer: Peer, token: string, store: Store, metrics: Metrics): Promise<number> {
  const remote = await peerJson<{ buckets: string[] }>(peer, token, { method: 'GET', path: '/internal/digest' });
  const diff = differingBuckets(store.digestHex(), remote.buckets);
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
  const stream = async () => {
    while (!failed && next < chunks.length) {
      const paths = chunks[next++]!;
      const res = await peerRequest(peer, token, { method: 'POST', path: '/internal/fetch', json: { paths }, timeoutMs: 120_000 });
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
        failed = true;
        res.destroy();
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(FETCH_STREAMS, chunks.length) }, stream));
  const rejected = results.find((r) => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return repaired;
}
