// Each import rule of .dependency-cruiser.mjs must refuse a wrong import. The rules run, through the
// same CLI as `npm run lint`, over a scratch tree with the repository's layout: its package.json,
// tsconfig.json and node_modules, and one importing file per case (the imported files exist).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

const REPO = resolve(import.meta.dirname, '../../..');

// [rule, importing file, specifier]: one importing file per case, so one run judges them all.
const REFUSED = [
  ['fileserver-store-is-the-bottom', 'fileserver/src/store/store.ts', '../replication/peers.ts'],
  ['fileserver-store-is-the-bottom', 'fileserver/src/store/state.ts', '../http/errors.ts'],
  ['fileserver-replication-below-http', 'fileserver/src/replication/sender.ts', '../http/errors.ts'],
  ['fileserver-shared-modules-below-the-rooms', 'fileserver/src/config.ts', './replication/peers.ts'],
  ['operator-runtime-below-controllers', 'operator/src/runtime/kube.ts', '../controllers/filecluster/names.ts'],
  ['operator-shared-modules-below-the-rooms', 'operator/src/config.ts', './runtime/kube.ts'],
  ['operator-api-imports-only-the-contract', 'operator/src/api/v1alpha1/types.ts', '../../controllers/filecluster/names.ts'],
  ['operator-api-imports-only-the-contract', 'operator/src/api/v1alpha1/defaults.ts', '../../logger.ts'],
  ['operator-loads-no-schema-builder', 'operator/src/controllers/filecluster/status.ts', '../../api/v1alpha1/schema.ts'],
  ['operator-loads-no-schema-builder', 'operator/src/controllers/filecluster/token.ts', '@sinclair/typebox'],
  ['contract-imports-nothing-of-the-project', 'contract/peer-api.ts', '../fileserver/src/errors.ts'],
  ['operator-and-fileserver-share-only-the-contract', 'operator/src/controllers/filecluster/nodes.ts', '../../../../fileserver/src/streams.ts'],
  ['fileserver-and-operator-share-only-the-contract', 'fileserver/src/http/internal.ts', '../../../operator/src/api/v1alpha1/quantity.ts'],
  ['components-import-no-tests', 'fileserver/src/app.ts', '../../test/harness/wait.ts'],
  ['imports-resolve', 'fileserver/src/main.ts', 'missing-package-nobody-installed'],
  // Present in node_modules through testcontainers, absent from package.json.
  ['packages-declared', 'test/resilience/support/containers.ts', 'ssh2'],
  ['shipped-code-uses-no-dev-packages', 'operator/src/metrics.ts', 'fast-check'],
] as const;

// [importing file, specifier, type-only]: imports the layering allows.
const ALLOWED = [
  ['fileserver/src/http/files.ts', '../store/paths.ts', false],
  ['fileserver/src/replication/catchup.ts', '../store/digest.ts', false],
  ['operator/src/controllers/filecluster/plan.ts', '../../runtime/digest.ts', false],
  ['operator/src/api/v1alpha1/quantity.ts', '../../../../contract/fileserver-settings.ts', false],
  ['fileserver/src/logger.ts', '../../contract/fileserver-settings.ts', false],
  ['test/unit/fileserver/config.test.ts', '../../../operator/src/start.ts', false],
  ['operator/src/runtime/leader.ts', 'fast-check', true],
  ['operator/src/controllers/filecluster/slim.ts', '../../api/v1alpha1/schema.ts', true],
] as const;

let violations: Array<{ from: string; rule: { name: string } }> = [];
let scratch = '';

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'import-rules-'));
  for (const file of ['package.json', 'tsconfig.json']) copyFileSync(join(REPO, file), join(scratch, file));
  symlinkSync(join(REPO, 'node_modules'), join(scratch, 'node_modules'));
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(scratch, path)), { recursive: true });
    writeFileSync(join(scratch, path), text);
  };
  const cases: Array<readonly [string, string, boolean]> = [...REFUSED.map(([, from, to]) => [from, to, false] as const), ...ALLOWED];
  for (const [from, specifier] of cases) if (specifier.startsWith('.')) write(join(dirname(from), specifier), 'export const x = 1;\n');
  for (const [from, specifier, typeOnly] of cases) write(from, `import ${typeOnly ? 'type ' : ''}{ x } from '${specifier}';\nexport const y = x;\n`);
  const run = spawnSync(
    join(REPO, 'node_modules/.bin/depcruise'),
    ['--config', join(REPO, '.dependency-cruiser.mjs'), '--output-type', 'json', 'contract', 'fileserver', 'operator', 'test'],
    { cwd: scratch, encoding: 'utf8' },
  );
  assert.ok(run.stdout, `depcruise printed nothing: ${run.stderr}`);
  violations = (JSON.parse(run.stdout) as { summary: { violations: typeof violations } }).summary.violations;
});

after(() => rmSync(scratch, { recursive: true, force: true }));

const brokenBy = (from: string): string[] => violations.filter((v) => v.from === from).map((v) => v.rule.name);

describe('import rules', () => {
  for (const [rule, from, specifier] of REFUSED) {
    it(`${rule}: refuses ${from} importing ${specifier}`, () => {
      assert.deepEqual(brokenBy(from), [rule]);
    });
  }
  for (const [from, specifier, typeOnly] of ALLOWED) {
    it(`allows ${from} importing ${typeOnly ? 'types from ' : ''}${specifier}`, () => {
      assert.deepEqual(brokenBy(from), []);
    });
  }
});
