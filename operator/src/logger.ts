import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { component: 'filecluster-operator' }, timestamp: pino.stdTimeFunctions.isoTime });
}
