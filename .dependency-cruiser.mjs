// The import rules: the layering of both components, the one module they share, and npm packages
// declared where they are used. `npm run lint` checks them (npm test runs it); the unit test
// test/unit/repo/import-rules.test.ts checks that each rule fails on a wrong import.
// Type-only imports count: a type from a higher room still ties the lower room to it.

const PROJECT = '^(contract|fileserver|operator|test|bench|scripts)/';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'fileserver-store-is-the-bottom',
      comment: 'The store knows nothing of replication or HTTP (fileserver: http -> replication -> store).',
      severity: 'error',
      from: { path: '^fileserver/src/store/' },
      to: { path: '^fileserver/src/(replication|http)/' },
    },
    {
      name: 'fileserver-replication-below-http',
      comment: 'Replication knows nothing of the HTTP layer that serves it.',
      severity: 'error',
      from: { path: '^fileserver/src/replication/' },
      to: { path: '^fileserver/src/http/' },
    },
    {
      name: 'fileserver-shared-modules-below-the-rooms',
      comment: 'config, errors, logger, metrics and streams serve every room, so they import none of them.',
      severity: 'error',
      from: { path: '^fileserver/src/(config|errors|logger|metrics|streams)\\.ts$' },
      to: { path: '^fileserver/src/(store|replication|http)/' },
    },
    {
      name: 'operator-runtime-below-controllers',
      comment: 'The runtime (client, informers, work queue, leader election) knows no controller (operator: controllers -> runtime).',
      severity: 'error',
      from: { path: '^operator/src/runtime/' },
      to: { path: '^operator/src/controllers/' },
    },
    {
      name: 'operator-shared-modules-below-the-rooms',
      comment: 'config, errors, logger and metrics serve every room, so they import none of them.',
      severity: 'error',
      from: { path: '^operator/src/(config|errors|logger|metrics)\\.ts$' },
      to: { path: '^operator/src/(controllers|runtime)/' },
    },
    {
      name: 'operator-api-imports-only-the-contract',
      comment: 'The FileCluster API types are plain data: they import nothing of the project but the shared contract.',
      severity: 'error',
      from: { path: '^operator/src/api/' },
      to: { path: PROJECT, pathNot: '^(operator/src/api|contract)/' },
    },
    {
      name: 'contract-imports-nothing-of-the-project',
      comment: 'The shared contract is the bottom of both components.',
      severity: 'error',
      from: { path: '^contract/' },
      to: { path: PROJECT, pathNot: '^contract/' },
    },
    {
      name: 'operator-and-fileserver-share-only-the-contract',
      comment: 'The operator and the file server meet only in contract/ (peer API, settings).',
      severity: 'error',
      from: { path: '^operator/src/' },
      to: { path: '^fileserver/' },
    },
    {
      name: 'fileserver-and-operator-share-only-the-contract',
      comment: 'The operator and the file server meet only in contract/ (peer API, settings).',
      severity: 'error',
      from: { path: '^fileserver/src/' },
      to: { path: '^operator/' },
    },
    {
      name: 'components-import-no-tests',
      comment: 'Shipped code does not depend on tests, benchmarks or scripts.',
      severity: 'error',
      from: { path: '^(contract|fileserver/src|operator/src)/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'packages-declared',
      comment: 'Every imported npm package is in package.json, not just present through another package.',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'shipped-code-uses-no-dev-packages',
      comment: 'Images install production dependencies only; a type-only import is erased and may use a dev package.',
      severity: 'error',
      from: { path: '^(contract|fileserver/src|operator/src)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'imports-resolve',
      comment: 'An import that resolves to nothing fails at run time.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
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
