import { registerHooks } from 'node:module';

// client-node's KubeConfig module imports its generated code only for what the operator never calls
// (KubeConfig.makeApiClient builds generated API clients). Loading it costs about 40 MiB of resident
// memory (about 25 MiB of generated JavaScript source alone, kept by V8), a third of the operator's
// footprint. This hook hands that import a small stand-in instead. (The operator's informer lists and
// watches through kube.ts, so client-node's informer modules are not loaded at all.)
//
// Only this edge is replaced, and only for @kubernetes/client-node 2.0.1's layout (package.json pins
// it): after an upgrade that moves it the hook matches nothing and the full code loads again; a
// stand-in that lacks a name an importer needs fails the start with a link error
// (test/unit/operator/runtime/client-node-hooks.test.ts loads the operator's runtime through it).

const DIST = '/node_modules/@kubernetes/client-node/dist/';

/** [importer, imported] (paths under client-node's dist/) -> the module that stands in for the imported one. */
const STAND_INS: ReadonlyArray<[string, string, string]> = [
  [
    'config.js',
    'gen/index.js',
    "export function createConfiguration() { throw new Error('the generated API clients of @kubernetes/client-node are not loaded in the operator'); }\n" +
      'export class ServerConfiguration {}\n',
  ],
];

/** The stand-in for an import, if it is one of the replaced edges. */
export function standIn(parentUrl: string | undefined, url: string): string | undefined {
  if (!parentUrl) return undefined;
  for (const [importer, imported, source] of STAND_INS) {
    if (parentUrl.endsWith(DIST + importer) && url.endsWith(DIST + imported)) return `data:text/javascript,${encodeURIComponent(source)}`;
  }
  return undefined;
}

/** Must run before anything imports client-node (main.ts loads the rest of the operator afterwards). */
export function installClientNodeHooks(): void {
  registerHooks({
    resolve(specifier, context, next) {
      const resolved = next(specifier, context);
      const url = standIn(context.parentURL, resolved.url);
      return url ? { ...resolved, url, format: 'module' } : resolved;
    },
  });
}
