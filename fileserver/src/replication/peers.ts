import { z } from 'zod';

export interface Peer {
  id: string;
  url: string;
}

export interface PeerList {
  generation: number;
  peers: Peer[];
}

const PEER_ID_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const MAX_PEERS = 1000;

const PeerSchema = z.object({
  id: z.string().regex(PEER_ID_RE, 'peer id must be a DNS-label-like name'),
  url: z
    .string()
    .max(2048)
    .refine((u) => URL.canParse(u) && ['http:', 'https:'].includes(new URL(u).protocol), 'peer url must be an http(s) URL'),
});

const PeerListSchema = z
  .object({
    generation: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    peers: z.array(PeerSchema).max(MAX_PEERS),
  })
  .strict()
  .refine((l) => new Set(l.peers.map((p) => p.id)).size === l.peers.length, 'peer ids must be unique');

export type PeerListCheck = { ok: true; list: PeerList } | { ok: false; message: string };

function normalize(list: PeerList, selfId: string): PeerList {
  return {
    generation: list.generation,
    peers: list.peers
      .filter((p) => p.id !== selfId)
      .map((p) => ({ id: p.id, url: p.url.replace(/\/+$/, '') }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  };
}

/** Validates a pushed peer list; the node's own entry is dropped. */
export function parsePeerList(body: unknown, selfId: string): PeerListCheck {
  const r = PeerListSchema.safeParse(body);
  if (!r.success) return { ok: false, message: r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') };
  return { ok: true, list: normalize(r.data, selfId) };
}

/** Parses FC_PEERS (`id=url,id=url`) into a generation-0 list. */
export function parseStaticPeers(spec: string, selfId: string): PeerListCheck {
  const peers: Peer[] = [];
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq <= 0) return { ok: false, message: `"${item}" is not id=url` };
    peers.push({ id: item.slice(0, eq), url: item.slice(eq + 1) });
  }
  return parsePeerList({ generation: 0, peers }, selfId);
}

export function samePeers(a: PeerList, b: PeerList): boolean {
  return a.peers.length === b.peers.length && a.peers.every((p, i) => p.id === b.peers[i]?.id && p.url === b.peers[i]?.url);
}

export type PeerListDecision = 'accept' | 'unchanged' | 'stale' | 'conflict';

/** Whether a pushed list replaces the held one: lower generations are refused, as is a different list under the same generation. */
export function decidePeerList(current: PeerList, incoming: PeerList): PeerListDecision {
  if (incoming.generation < current.generation) return 'stale';
  if (incoming.generation === current.generation) return samePeers(current, incoming) ? 'unchanged' : 'conflict';
  return 'accept';
}
