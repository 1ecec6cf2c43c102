import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, parseStaticPeers } from '../../../fileserver/src/config.ts';

describe('file server configuration', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({ FC_TOKEN: 't', FC_NODE_ID: 'fc-0' });
    assert.equal(c.port, 8080);
    assert.equal(c.metricsPort, 9090);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.dataDir, '/data');
    assert.equal(c.defaultAck, 'local');
    assert.equal(c.ackTimeoutMs, 10_000);
    assert.equal(c.maxBodyBytes, 10 * 1024 ** 3);
    assert.equal(c.tombstoneRetentionMs, 86_400_000);
    assert.equal(c.catchupIntervalMs, 30_000);
    assert.equal(c.maxClockDriftMs, 60_000);
    assert.equal(c.headersTimeoutMs, 60_000);
    assert.equal(c.bodyIdleTimeoutMs, 60_000);
    assert.deepEqual(c.staticPeers, { generation: 0, peers: [] });
    assert.equal(c.awaitPeerList, false);
  });

  it('refuses a tombstone retention shorter than ten catch-up intervals, naming both', () => {
    assert.throws(
      () => loadConfig({ FC_TOKEN: 't', FC_TOMBSTONE_RETENTION_SECONDS: '299', FC_CATCHUP_INTERVAL_SECONDS: '30' }),
      /FC_TOMBSTONE_RETENTION_SECONDS \(299\) must be at least 10 times FC_CATCHUP_INTERVAL_SECONDS \(30\)/,
    );
    assert.equal(loadConfig({ FC_TOKEN: 't', FC_TOMBSTONE_RETENTION_SECONDS: '300', FC_CATCHUP_INTERVAL_SECONDS: '30' }).tombstoneRetentionMs, 300_000);
  });

  it('gives the headers timeout in whole milliseconds, as Node requires', () => {
    assert.equal(loadConfig({ FC_TOKEN: 't', FC_HEADERS_TIMEOUT_SECONDS: '1.0005' }).headersTimeoutMs, 1001);
  });

  it('reads the token from a file, trimmed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fc-cfg-'));
    try {
      await writeFile(join(dir, 'token'), 'from-secret\n');
      assert.equal(loadConfig({ FC_TOKEN_FILE: join(dir, 'token'), FC_NODE_ID: 'a' }).token, 'from-secret');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes a previous token during a rotation, unless it is the token itself', () => {
    assert.equal(loadConfig({ FC_TOKEN: 'new', FC_PREVIOUS_TOKEN: 'old', FC_NODE_ID: 'a' }).previousToken, 'old');
    assert.equal(loadConfig({ FC_TOKEN: 'same', FC_PREVIOUS_TOKEN: 'same', FC_NODE_ID: 'a' }).previousToken, undefined);
    assert.equal(loadConfig({ FC_TOKEN: 'new', FC_NODE_ID: 'a' }).previousToken, undefined);
  });

  for (const [what, env, pattern] of [
    ['no token', { FC_NODE_ID: 'a' }, /FC_TOKEN/],
    ['bad port', { FC_TOKEN: 't', FC_PORT: '70000' }, /FC_PORT/],
    ['bad ack mode', { FC_TOKEN: 't', FC_DEFAULT_ACK: 'some' }, /FC_DEFAULT_ACK/],
    ['bad node id', { FC_TOKEN: 't', FC_NODE_ID: '../x' }, /FC_NODE_ID/],
    ['bad static peers', { FC_TOKEN: 't', FC_NODE_ID: 'a', FC_PEERS: 'b' }, /FC_PEERS/],
    ['a clock drift of 0', { FC_TOKEN: 't', FC_MAX_CLOCK_DRIFT_SECONDS: '0' }, /FC_MAX_CLOCK_DRIFT_SECONDS/],
    ['a body idle timeout of 0', { FC_TOKEN: 't', FC_BODY_IDLE_TIMEOUT_SECONDS: '0' }, /FC_BODY_IDLE_TIMEOUT_SECONDS/],
    ['a negative headers timeout', { FC_TOKEN: 't', FC_HEADERS_TIMEOUT_SECONDS: '-1' }, /FC_HEADERS_TIMEOUT_SECONDS/],
    ['a clock drift that is no number', { FC_TOKEN: 't', FC_MAX_CLOCK_DRIFT_SECONDS: 'a minute' }, /FC_MAX_CLOCK_DRIFT_SECONDS/],
  ] as const) {
    it(`refuses ${what} with a message naming the variable`, () => assert.throws(() => loadConfig(env), pattern));
  }

  it('parses the static FC_PEERS form', () => {
    const r = parseStaticPeers('a=http://127.0.0.1:1, b=http://127.0.0.2:2,me=http://x', 'me');
    assert.deepEqual(r, {
      ok: true,
      list: {
        generation: 0,
        peers: [
          { id: 'a', url: 'http://127.0.0.1:1' },
          { id: 'b', url: 'http://127.0.0.2:2' },
        ],
      },
    });
    assert.equal(parseStaticPeers('nonsense', 'me').ok, false);
  });
});
