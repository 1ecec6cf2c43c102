// The import rules: the layering of both components, the one module they share, and npm packages
// declared where they are used. `npm run lint` checks them (npm test runs it); the unit test
// test/unit/repo/import-rules.test.ts checks that each rule fails on a wrong import.
// Type-only imports count: a type from a higher room still ties the lower room to it.

const PROJECT = '^(contract|fileserver|operator|test|bench|scripts)/';
/** The FileCluster schema's modules and the library that builds it. */
const SCHEMA_BUILDER = '^operator/src/api/v1alpha1/(schema|crd)\\.ts$|(^|/)node_modules/@sinclair/typebox/';

/** A rule: no import from a module matching `from` to one matching `to`. */
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });

/** A layering rule: modules under `lower` import none under `higher` (both path patterns). */
const below = (name, comment, lower, higher) => forbid(name, comment, { path: lower }, { path: higher });

/** The operator and the file server meet only in contract/ (peer API, settings), in both directions. */
const shareOnlyTheContract = (a, b) =>
  below(`${a}-and-${b}-share-only-the-contract`, 'The operator and the file server meet only in contract/ (peer API, settings).', `^${a}/src/`, `^${b}/`);

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    below(
      'fileserver-store-is-the-bottom',
      'The store knows nothing of replication or HTTP (fileserver: http -> replication -> store).',
      '^fileserver/src/store/',
      '^fileserver/src/(replication|http)/',
    ),
    below('fileserver-replication-below-http', 'Replication knows nothing of the HTTP layer that serves it.', '^fileserver/src/replication/', '^fileserver/src/http/'),
    below(
      'fileserver-shared-modules-below-the-rooms',
      'config, errors, logger, metrics and streams serve every room, so they import none of them.',
      '^fileserver/src/(config|errors|logger|metrics|streams)\\.ts$',
      '^fileserver/src/(store|replication|http)/',
    ),
    below(
      'operator-runtime-below-controllers',
      'The runtime (client, informers, work queue, leader election) knows no controller (operator: controllers -> runtime).',
      '^operator/src/runtime/',
      '^operator/src/controllers/',
    ),
    below(
      'operator-shared-modules-below-the-rooms',
      'config, errors, logger and metrics serve every room, so they import none of them.',
      '^operator/src/(config|errors|logger|metrics)\\.ts$',
      '^operator/src/(controllers|runtime)/',
    ),
    forbid(
      'operator-api-imports-only-the-contract',
      'The FileCluster API types are plain data: they import nothing of the project but the shared contract.',
      { path: '^operator/src/api/' },
      { path: PROJECT, pathNot: '^(operator/src/api|contract)/' },
    ),
    forbid(
      'operator-loads-no-schema-builder',
      'The FileCluster schema (and TypeBox behind it) serves the generator and the types; the operator process reads the defaults from defaults.generated.ts.',
      { path: '^operator/src/', pathNot: SCHEMA_BUILDER },
      { path: SCHEMA_BUILDER, dependencyTypesNot: ['type-only'] },
    ),
    forbid(
      'contract-imports-nothing-of-the-project',
      'The shared contract is the bottom of both components.',
      { path: '^contract/' },
      { path: PROJECT, pathNot: '^contract/' },
    ),
    shareOnlyTheContract('operator', 'fileserver'),
    shareOnlyTheContract('fileserver', 'operator'),
    below(
      'components-import-no-tests',
      'Shipped code does not depend on tests, benchmarks or scripts.',
      '^(contract|fileserver/src|operator/src)/',
      '^(test|bench|scripts)/',
    ),
    forbid(
      'packages-declared',
      'Every imported npm package is in package.json, not just present through another package.',
      {},
      { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    ),
    forbid(
      'shipped-code-uses-no-dev-packages',
      'Images install production dependencies only; a type-only import is erased and may use a dev package.',
      { path: '^(contract|fileserver/src|operator/src)/' },
      { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    ),
    forbid('imports-resolve', 'An import that resolves to nothing fails at run time.', {}, { couldNotResolve: true }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    combinedDependencies: false,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
