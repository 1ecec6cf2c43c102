// Writes the application part of a component's container root filesystem: package.json, the component's
// compiled sources from dist/ (plus any repository directory they import from; `npm run build` first) and
// only the production packages that those sources import, with their dependencies resolved the way Node
// resolves them, from package-lock.json.
//
//   node scripts/image-rootfs.ts <fileserver|operator> <target-app-dir>
//
// scripts/build-images.sh adds the Node runtime, its shared libraries and /etc, then `docker import`s it.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';

interface LockPackage {
  dev?: boolean;
  optional?: boolean;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const REPO = resolve(import.meta.dirname, '..');
// Package files Node never loads at run time: type declarations and TypeScript sources (Node does not
// strip types under node_modules), source maps, docs.
const NOT_AT_RUN_TIME = /\.(ts|mts|cts|map|md|markdown)$/i;
const BUILTINS = new Set(builtinModules);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|js|mjs|cjs|json)$/.test(entry.name) ? [path] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;

/** Specifiers of every static or dynamic import in the files (type-only imports are erased at run time). */
function importSpecifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8')
    .replace(/^\s*import\s+type\s[^;]*;/gm, '')
    .replace(/^\s*export\s+type\s[^;]*;/gm, '');
  return [...text.matchAll(SPECIFIER)].map((match) => match[1]!);
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/**
 * The component's source directories (its own src, plus every repository directory its relative imports
 * reach, e.g. a shared module) and the npm packages those sources import.
 */
export function componentInputs(component: string): { dirs: string[]; packages: string[] } {
  const dirs = new Set<string>([join(component, 'src')]);
  const packages = new Set<string>();
  const pending = [...dirs];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    for (const file of sourceFiles(join(REPO, dir))) {
      for (const specifier of importSpecifiers(file)) {
        if (specifier.startsWith('.')) {
          const target = relative(REPO, resolve(dirname(file), specifier));
          if (target.startsWith('..')) throw new Error(`${file} imports ${specifier}, outside the repository`);
          if (![...dirs].some((d) => target.startsWith(d + sep))) {
            dirs.add(dirname(target));
            pending.push(dirname(target));
          }
        } else if (!specifier.startsWith('node:') && !BUILTINS.has(specifier)) {
          packages.add(packageName(specifier));
        }
      }
    }
  }
  return { dirs: [...dirs].sort(), packages: [...packages].sort() };
}

/** Lockfile paths (node_modules/a, node_modules/a/node_modules/b) of the packages and all they depend on. */
export function productionClosure(lock: Record<string, LockPackage>, roots: string[]): string[] {
  const found = new Set<string>();
  const visit = (from: string, name: string, optional: boolean): void => {
    // Node's resolution: the nearest node_modules/<name> walking up from the requiring package.
    let base = from;
    for (;;) {
      const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
      if (lock[candidate]) {
        if (found.has(candidate)) return;
        const entry = lock[candidate];
        if (entry.dev) throw new Error(`${candidate} is a dev dependency but production code needs it`);
        found.add(candidate);
        for (const dep of Object.keys(entry.dependencies ?? {})) visit(candidate, dep, false);
        for (const dep of Object.keys(entry.optionalDependencies ?? {})) visit(candidate, dep, true);
        return;
      }
      if (base === '') break;
      const at = base.lastIndexOf('/node_modules/');
      base = at < 0 ? '' : base.slice(0, at);
    }
    if (!optional) throw new Error(`cannot resolve ${name} from ${from || 'the root package'}`);
  };
  for (const root of roots) visit('', root, false);
  return [...found].sort();
}

function main(): void {
  const [component, target] = process.argv.slice(2);
  if (!component || !target || !existsSync(join(REPO, component, 'src'))) {
    console.error('usage: node scripts/image-rootfs.ts <fileserver|operator> <target-app-dir>');
    process.exit(2);
  }
  const rootPackage = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const lock = (JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> }).packages;
  const { dirs, packages } = componentInputs(component);
  const undeclared = packages.filter((name) => !rootPackage.dependencies?.[name]);
  if (undeclared.length > 0) throw new Error(`${component} imports packages missing from dependencies: ${undeclared.join(', ')}`);
  const closure = productionClosure(lock, packages);

  mkdirSync(target, { recursive: true });
  cpSync(join(REPO, 'package.json'), join(target, 'package.json'));
  for (const dir of dirs) {
    const compiled = join(REPO, 'dist', dir);
    if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run npm run build`);
    cpSync(compiled, join(target, 'dist', dir), { recursive: true });
  }
  for (const path of closure) {
    const source = join(REPO, path);
    if (!existsSync(source)) continue; // an optional dependency for another platform
    // Nested node_modules are copied as their own closure entries, so only the needed ones land.
    cpSync(source, join(target, path), {
      recursive: true,
      filter: (src) => relative(source, src).split(sep)[0] !== 'node_modules' && !NOT_AT_RUN_TIME.test(src),
    });
  }
  console.log(JSON.stringify({ component, dirs, packages, installed: closure.length }));
}

if (import.meta.main) main();
