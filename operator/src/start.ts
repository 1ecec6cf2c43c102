// Starts the operator from its flags and environment (main.ts imports this once its hooks are in).
import { buildOperator, loadKubeConfig } from './app.ts';
import { configFromArgs } from './config.ts';
import { createLogger } from './logger.ts';

const config = configFromArgs(process.argv.slice(2), process.env);
const log = createLogger(config.logLevel);
const operator = buildOperator(config, loadKubeConfig(config), log, {
  onLostLeadership: () => {
    log.fatal('leadership lost: exiting so that no work of the lost term goes on');
    process.exit(1);
  },
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(1), 20_000);
  force.unref();
  await operator.stop();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('unhandledRejection', (err) => log.error({ err: String(err) }, 'unhandled rejection'));

operator.start().catch((err: unknown) => {
  log.fatal({ err: err instanceof Error ? err.message : String(err) }, 'operator failed to start');
  process.exit(1);
});
