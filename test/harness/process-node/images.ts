/**
 * Which local command runs a container image on the process node. No registry is reachable here, so
 * images map to commands: this repo's built code (with the environment its Dockerfile sets) for its own
 * images, Node 24 for generic Node images.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { imageEnv } from '../../../scripts/image-env.ts';
import type { ImageCommand } from '../types.ts';

/** The repository part of an image reference: no registry host, tag or digest. */
export function imageRepository(image: string): string {
  let ref = image.split('@')[0] ?? '';
  const lastSlash = ref.lastIndexOf('/');
  const tagColon = ref.indexOf(':', lastSlash + 1);
  if (tagColon >= 0) ref = ref.slice(0, tagColon);
  const parts = ref.split('/');
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) parts.shift();
  if (parts.length === 2 && parts[0] === 'library') parts.shift();
  return parts.join('/');
}

export function builtinImages(repoRoot: string): Record<string, ImageCommand> {
  const nodeImage: ImageCommand = { command: [], appendContainerCommand: true };
  return {
    'filecluster/fileserver': { command: ['node', path.join(repoRoot, 'dist/fileserver/src/main.js')], env: imageEnv('fileserver'), listenAddressEnv: ['FC_HOST'] },
    'filecluster/operator': { command: ['node', path.join(repoRoot, 'dist/operator/src/main.js')], env: imageEnv('operator'), listenAddressEnv: ['FC_OPERATOR_HOST'] },
    'filecluster/node': nodeImage,
    node: nodeImage,
  };
}

// Commands a generic image's entrypoint would find on its PATH rather than hand to node.
const SHELL_COMMANDS = new Set(['sh', 'bash', 'cat', 'sleep', 'true', 'false', 'env', 'echo', 'test']);

export class ImageNotMappedError extends Error {}

/**
 * The argv that runs `container` of `image`: the mapped entrypoint, then (for generic Node images) the
 * container's command, then its args. A leading 'node' becomes `nodeBinary`; like the node image's
 * entrypoint, a generic Node image runs a command that is not a shell command with node.
 */
export function containerArgv(image: string, container: { command?: string[]; args?: string[] }, table: Record<string, ImageCommand>, nodeBinary: string): string[] {
  const repository = imageRepository(image);
  const mapping = table[repository];
  if (!mapping) {
    throw new ImageNotMappedError(`image "${image}" has no local command on the process node (mapped repositories: ${Object.keys(table).join(', ')})`);
  }
  const argv = [...mapping.command];
  if (mapping.appendContainerCommand) argv.push(...(container.command ?? []));
  argv.push(...(container.args ?? []));
  const first = argv[0];
  if (first === undefined || (mapping.appendContainerCommand && !SHELL_COMMANDS.has(first) && first !== 'node' && !path.isAbsolute(first))) {
    argv.unshift('node');
  }
  if (argv[0] === 'node') argv[0] = nodeBinary;
  return argv;
}

/** This repo's Node 24: the running binary when it is Node >= 24, else the `node` npm package's. */
export function nodeBinary(repoRoot: string): string {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) return process.execPath;
  const packaged = path.join(repoRoot, 'node_modules/node/bin/node');
  if (existsSync(packaged)) return packaged;
  throw new Error('no Node >= 24 found: run npm ci (the node package provides it)');
}
