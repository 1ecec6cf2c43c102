import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFileServer } from './app.ts';
import { loadConfig } from './config.ts';
import { onClientError } from './http/errors.ts';
import { createLogger } from './logger.ts';

const SHUTDOWN_DEADLINE_MS = 20_000;

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel, config.nodeId);
  const fs = await createFileServer(config, logger);
  // No limit on a whole request (an upload of GiBs takes long), but the headers must arrive within their
  // timeout, which Node checks every connectionsCheckingInterval (with requestTimeout 0 its default
  // headersTimeout is 0 too: none), and a body that stalls is ended by the app's body-idle watch.
  const api = http.createServer(
    {
      requestTimeout: 0,
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.ceil(Math.min(30_000, Math.max(50, config.headersTimeoutMs / 4))),
      keepAliveTimeout: 65_000,
    },
    fs.api,
  );
  api.on('clientError', onClientError);
  const metricsServer = http.createServer(fs.metricsApi);
  const port = await listen(api, config.port, config.host);
  const metricsPort = await listen(metricsServer, config.metricsPort, config.host);
  logger.info({ host: config.host, port, metricsPort, dataDir: config.dataDir }, 'listening');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown deadline passed; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    // Stop taking requests and let those in flight finish, then close the store (its commits are durable already).
    const closed = new Promise((r) => api.close(r));
    api.closeIdleConnections();
    await closed;
    metricsServer.close();
    await fs.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

await main();
