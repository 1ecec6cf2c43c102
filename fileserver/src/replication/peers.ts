import type { PeerList } from '../../../contract/peer-api.ts';

// Which peer list a node holds; the list's wire shape and validation are in contract/peer-api.ts.

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
