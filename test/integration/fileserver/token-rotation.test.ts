// A token rotation rolls through the pods one at a time: for a while, nodes started with the new token
// (and the previous one) replicate with nodes that know only the previous token, in both directions.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, eventually, TestCluster, TOKEN, type FileServerNode } from './support/nodes.ts';

const NEW_TOKEN = 'the-rotated-token';

describe('token rotation between file-server processes', () => {
  const cluster = new TestCluster();
  let old: FileServerNode;
  let rotated: FileServerNode;

  before(async () => {
    const env = { FC_ACK_TIMEOUT_MS: '20000' };
    old = await cluster.add({ id: 'rot-old', env });
    rotated = await cluster.add({ id: 'rot-new', env: { ...env, FC_TOKEN: NEW_TOKEN, FC_PREVIOUS_TOKEN: TOKEN } });
    // Sent with the previous token, which both accept (the operator's choice during a rotation).
    await cluster.pushPeers();
  });
  after(() => cluster.close());

  it('a node with the new token accepts both tokens; one without a previous token only its own', async () => {
    const asNew = await fetch(`${rotated.url}/internal/peers`, { headers: { authorization: `Bearer ${NEW_TOKEN}` } });
    assert.equal(asNew.status, 200);
    assert.equal((await fetch(`${old.url}/internal/peers`, { headers: { authorization: `Bearer ${NEW_TOKEN}` } })).status, 401);
  });

  it('writes replicate both ways between a rotated node and one on the previous token', async () => {
    // The rotated node first sends its new token, is refused, and goes on with the previous one.
    const fromNew = await api(rotated, 'PUT', '/files/rotation/from-new.txt', { body: 'new', headers: { 'x-filecluster-ack': 'all' } });
    assert.equal(fromNew.status, 201, fromNew.text);
    const fromOld = await api(old, 'PUT', '/files/rotation/from-old.txt', { body: 'old', headers: { 'x-filecluster-ack': 'all' } });
    assert.equal(fromOld.status, 201, fromOld.text);
    for (const [n, path, body] of [
      [old, 'rotation/from-new.txt', 'new'],
      [rotated, 'rotation/from-old.txt', 'old'],
    ] as const) {
      await eventually(`${path} on ${n.id}`, async () => (await api(n, 'GET', `/files/${path}`)).text === body);
    }
  });

  it('once every node runs the new token alone, the previous one is refused', async () => {
    await old.kill();
    await old.start({ FC_TOKEN: NEW_TOKEN, FC_PREVIOUS_TOKEN: TOKEN });
    await rotated.kill();
    // A previous token equal to the token is none: this node now accepts the new token alone.
    await rotated.start({ FC_TOKEN: NEW_TOKEN, FC_PREVIOUS_TOKEN: NEW_TOKEN });
    assert.equal((await api(rotated, 'GET', '/internal/peers', { auth: true })).status, 401);
    // The node still holding the previous token sends the new one first, which the other accepts.
    const r = await api(old, 'PUT', '/files/rotation/after.txt', { body: 'after', headers: { 'x-filecluster-ack': 'all' } });
    assert.equal(r.status, 201, r.text);
    await eventually('after.txt on the node without a previous token', async () => (await api(rotated, 'GET', '/files/rotation/after.txt')).text === 'after');
  });
});
