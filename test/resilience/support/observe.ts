// Reading a file server from outside: its full manifest through the paged public listing, and its
// Prometheus samples. Shared by the container tests and the data-scale benchmark.
import assert from 'node:assert/strict';
import { api } from '../../integration/fileserver/support/nodes.ts';

export interface ManifestEntry {
  path: string;
  sha256: string;
  version: string;
}

/** Every live file of a node (path, hash, version), following nextCursor to the end. */
export async function manifest(baseUrl: string): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const r = await api(baseUrl, 'GET', `/files?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    if (r.status !== 200) throw new Error(`listing ${baseUrl} answered ${r.status}: ${r.text}`);
    const page = r.json<{ entries: ManifestEntry[]; nextCursor: string | null }>();
    for (const e of page.entries) out.push({ path: e.path, sha256: e.sha256, version: e.version });
    cursor = page.nextCursor;
  }
  return out;
}

/** True when every node lists the same files with the same hashes and versions. */
export async function sameManifests(nodes: Array<{ url: string }>): Promise<boolean> {
  const all = await Promise.all(nodes.map((n) => manifest(n.url)));
  const first = JSON.stringify(all[0]);
  return all.every((m) => JSON.stringify(m) === first);
}

/** Asserts identical full manifests on every node and returns that manifest. */
export async function assertSameManifests(nodes: Array<{ id: string; url: string }>): Promise<ManifestEntry[]> {
  const all = await Promise.all(nodes.map((n) => manifest(n.url)));
  for (let i = 1; i < nodes.length; i++) {
    assert.deepEqual(all[i], all[0], `manifest of ${nodes[i]!.id} differs from ${nodes[0]!.id}`);
  }
  return all[0]!;
}

/** Samples of one metric as a map from the label set text (`peer="b"`, or '' without labels) to value. */
export async function metricSamples(metricsUrl: string, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

/** One sample's value, or undefined when the series does not exist. */
export async function metricValue(metricsUrl: string, name: string, labels = ''): Promise<number | undefined> {
  return (await metricSamples(metricsUrl, name)).get(labels);
}
