// The file server image's V8 flags, read from fileserver/Dockerfile, the one place they are chosen:
// scripts/build-images.sh puts them into the locally built image, and the benchmarks run their nodes
// with them, so both run as deployed.
//
//   node scripts/image-node-options.ts    prints them
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function imageNodeOptions(): string {
  const dockerfile = readFileSync(join(import.meta.dirname, '../fileserver/Dockerfile'), 'utf8');
  const value = /^ENV .*\bNODE_OPTIONS=(\S+)/m.exec(dockerfile)?.[1];
  if (!value) throw new Error('fileserver/Dockerfile sets no NODE_OPTIONS');
  return value;
}

if (import.meta.main) console.log(imageNodeOptions());
