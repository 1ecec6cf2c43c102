// The V8 flags the file server's image sets, read from fileserver/Dockerfile (the one place they are
// chosen), so benchmark nodes run as deployed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function imageNodeOptions(): Promise<string> {
  const dockerfile = await readFile(join(import.meta.dirname, '../../fileserver/Dockerfile'), 'utf8');
  const value = /^ENV .*\bNODE_OPTIONS=(\S+)/m.exec(dockerfile)?.[1];
  if (!value) throw new Error('fileserver/Dockerfile sets no NODE_OPTIONS');
  return value;
}
