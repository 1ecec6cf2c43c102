// The environment each image sets, read from the component's Dockerfile (its last stage's ENV lines),
// the one place it is chosen: scripts/build-images.sh puts NODE_OPTIONS into the locally built image,
// the local cluster's process node gives it to the processes that stand in for containers, and the
// benchmarks run their nodes with the file server's V8 flags, so all of them run as deployed.
//
//   node scripts/image-env.ts fileserver NODE_OPTIONS    prints one variable
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { instructions, stages } from './dockerfile.ts';

export type Component = 'fileserver' | 'operator';

/** The `ENV name=value ...` instructions of the last stage; values must not be quoted or contain spaces. */
export function dockerfileEnv(dockerfile: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { op, args } of stages(instructions(dockerfile)).at(-1) ?? []) {
    if (op !== 'ENV') continue;
    for (const pair of args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0 || /["']/.test(pair)) throw new Error(`unsupported ENV form "${pair}": use unquoted name=value pairs`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

export function imageEnv(component: Component): Record<string, string> {
  return dockerfileEnv(readFileSync(join(import.meta.dirname, '..', component, 'Dockerfile'), 'utf8'));
}

/** The file server image's V8 flags. */
export function imageNodeOptions(): string {
  const value = imageEnv('fileserver')['NODE_OPTIONS'];
  if (!value) throw new Error('fileserver/Dockerfile sets no NODE_OPTIONS');
  return value;
}

if (import.meta.main) {
  const [component, name] = process.argv.slice(2);
  if ((component !== 'fileserver' && component !== 'operator') || !name) throw new Error('usage: image-env.ts fileserver|operator NAME');
  const value = imageEnv(component)[name];
  if (value === undefined) throw new Error(`${component}/Dockerfile sets no ${name}`);
  console.log(value);
}
