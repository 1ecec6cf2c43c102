// The documentation names files, folders, headings and npm scripts; this fails when one of them no longer
// exists, so a move or a rename in the code shows up as a broken doc instead of a silently wrong one.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const REPO = resolve(import.meta.dirname, '../../..');
/** Top-level folders whose paths the docs mention; a word starting with one of these must exist. */
const TRACKED_ROOTS = ['.ci/', 'bench/', 'charts/', 'contract/', 'docs/', 'fileserver/', 'manifests/', 'operator/', 'scripts/', 'test/'];
/** Characters that mark a pattern or a placeholder rather than one path. */
const PLACEHOLDER = /[*<>{}$[\]|]|\.\.\./;

function docFiles(): string[] {
  const docs = readdirSync(join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(REPO, 'docs', f));
  return [join(REPO, 'README.md'), join(REPO, 'charts/filecluster/README.md'), ...docs];
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Targets of `[text](target)` links, without external URLs. */
function links(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** Words inside inline code and fenced code blocks. */
function codeWords(markdown: string): string[] {
  const fences = [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  const withoutFences = markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  const inline = [...withoutFences.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  return [...fences, ...inline].flatMap((code) => code.split(/\s+/)).map((w) => w.replace(/^['"(]+|['",;:.)]+$/g, ''));
}

/** Repository paths named in a document's code that do not exist. */
function missingPaths(markdown: string): string[] {
  const paths = codeWords(markdown).filter((w) => TRACKED_ROOTS.some((r) => w.startsWith(r)) && !PLACEHOLDER.test(w));
  return [...new Set(paths)].filter((p) => !existsSync(join(REPO, p)));
}

describe('documentation', () => {
  const packageScripts = Object.keys((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);

  for (const file of docFiles()) {
    const name = relative(REPO, file);
    const text = readFileSync(file, 'utf8');

    it(`${name}: every relative link reaches an existing file and heading`, () => {
      const broken: string[] = [];
      for (const target of links(text)) {
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const resolved = path === '' ? file : resolve(dirname(file), path);
        if (!existsSync(resolved)) broken.push(`${target}: no such file`);
        else if (anchor !== undefined && resolved.endsWith('.md') && !headingAnchors(readFileSync(resolved, 'utf8')).has(anchor)) {
          broken.push(`${target}: no heading #${anchor}`);
        }
      }
      assert.deepEqual(broken, [], `${name} has broken links`);
    });

    it(`${name}: every repository path and npm script it names exists`, () => {
      const missing = missingPaths(text);
      const scripts = [...text.matchAll(/npm run (?:--silent )?([a-z][\w:-]*)/g)].map((m) => m[1]!);
      missing.push(...scripts.filter((s) => !packageScripts.includes(s)).map((s) => `npm run ${s}`));
      assert.deepEqual(missing, [], `${name} names paths or scripts that do not exist`);
    });
  }

  it('missingPaths names a path into any tracked folder, contract/ included, that does not exist', () => {
    assert.deepEqual(missingPaths('`contract/peer-api.ts` and `contract/gone.ts`, `operator/gone.ts`, `contract/*.ts`'), ['contract/gone.ts', 'operator/gone.ts']);
  });

  it('headingAnchors follows GitHub: punctuation dropped, repeats numbered', () => {
    assert.deepEqual(
      [...headingAnchors("# V8's young generation\n## Operator (environment and flags)\n## A\n## A\n```\n# not a heading\n```")],
      ['v8s-young-generation', 'operator-environment-and-flags', 'a', 'a-1'],
    );
  });
});
