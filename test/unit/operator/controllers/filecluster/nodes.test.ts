import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fenceNode, pushPeers, readNodeStatus } from '../../../../../operator/src/controllers/filecluster/nodes.ts';

// A minimal peer-API server on loopback: the contract's status codes, scripted per test.
async function peerApi(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handle(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const list = { generation: 3, peers: [{ id: 'fc-0', url: 'http://127.0.1.2:8080' }] };

test('push sends the list with the token and retries transient failures', async () => {
  let calls = 0;
  const api = await peerApi((req, body, res) => {
    calls++;
    assert.equal(req.headers.authorization, 'Bearer s3cret');
    if (calls === 1) return json(res, 503, { error: 'unavailable', message: 'starting' });
    json(res, 200, JSON.parse(body));
  });
  try {
    assert.deepEqual(await pushPeers(api.url, 's3cret', list, { timeoutMs: 1000, attempts: 3 }), { ok: true, generation: 3 });
    assert.equal(calls, 2);
  } finally {
    await api.close();
  }
});

test('a 409 reports the pod\u2019s newer generation without retrying; 401 is not retried', async () => {
  let puts = 0;
  const api = await peerApi((req, _body, res) => {
    if (req.method === 'PUT') {
      puts++;
      return req.headers.authorization === 'Bearer good'
        ? json(res, 409, { error: 'stale_generation', message: 'have 7' })
        : json(res, 401, { error: 'unauthorized', message: 'bad token' });
    }
    json(res, 200, { generation: 7, peers: [] });
  });
  try {
    assert.deepEqual(await pushPeers(api.url, 'good', list, { timeoutMs: 1000, attempts: 3 }), {
      ok: false,
      conflict: true,
      generation: 7,
      error: 'pod holds a newer peer list (generation 7)',
    });
    assert.equal(puts, 1);
    const denied = await pushPeers(api.url, 'bad', list, { timeoutMs: 1000, attempts: 3 });
    assert.deepEqual(denied, { ok: false, conflict: false, error: 'HTTP 401: bad token' });
    assert.equal(puts, 2);
  } finally {
    await api.close();
  }
});

test('an unreachable or silent pod fails within the bounded timeout', async () => {
  const api = await peerApi(() => {
    // never answers
  });
  try {
    const r = await pushPeers(api.url, 't', list, { timeoutMs: 100, attempts: 2 });
    assert.deepEqual(r, { ok: false, conflict: false, error: 'timed out' });
  } finally {
    await api.close();
  }
  const refused = await readNodeStatus('http://127.0.0.1:1', 't', 500);
  assert.equal(refused.ok, false);
});

test('status reports carry per-peer backlog; malformed ones are errors', async () => {
  let malformed = false;
  const api = await peerApi((_req, _body, res) =>
    malformed
      ? json(res, 200, { nodeId: 'fc-3' })
      : json(res, 200, {
          nodeId: 'fc-3',
          ready: true,
          catchingUp: false,
          generation: 5,
          peers: [{ id: 'fc-0', url: 'u', pendingChanges: 2, pendingBytes: 10, lagSeconds: 1, up: true }],
        }),
  );
  try {
    // A file server without the newer fields: Ready meant caught up, and it cannot be fenced.
    assert.deepEqual(await readNodeStatus(api.url, 't', 1000), {
      ok: true,
      generation: 5,
      syncedGeneration: 5,
      leaving: false,
      peers: [{ id: 'fc-0', pendingChanges: 2 }],
    });
    malformed = true;
    assert.deepEqual(await readNodeStatus(api.url, 't', 1000), { ok: false, error: 'malformed status' });
  } finally {
    await api.close();
  }
});

test('a fence is a PUT whose answer is the status taken behind it', async () => {
  const seen: Array<[string | undefined, string | undefined, unknown]> = [];
  const api = await peerApi((req, body, res) => {
    seen.push([req.method, req.url, JSON.parse(body)]);
    json(res, 200, { nodeId: 'fc-3', leaving: true, generation: 6, syncedGeneration: 4, peers: [{ id: 'fc-0', pendingChanges: 0 }] });
  });
  try {
    assert.deepEqual(await fenceNode(api.url, 't', true, 1000), {
      ok: true,
      generation: 6,
      syncedGeneration: 4,
      leaving: true,
      peers: [{ id: 'fc-0', pendingChanges: 0 }],
    });
    assert.deepEqual(seen, [['PUT', '/internal/fence', { leaving: true }]]);
  } finally {
    await api.close();
  }
  const refused = await fenceNode('http://127.0.0.1:1', 't', true, 500);
  assert.equal(refused.ok, false);
});
