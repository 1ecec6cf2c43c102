// scripts/kind/runc-bounded-caps.sh, the kind Docker daemon's runtime, must hand runc a container config
// (runc create --bundle) and an exec process (runc exec --process) holding only capabilities that this
// machine's bounding set has, and change nothing else. A stub runc stands in for the real one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const WRAPPER = resolve(import.meta.dirname, '../../../scripts/kind/runc-bounded-caps.sh');
// Capability names in bit order (linux/capability.h), as docker --privileged asks for them.
const ALL = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
].map((c) => `CAP_${c}`);
const bounding = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
const allowed = ALL.filter((_, bit) => (bounding >> BigInt(bit)) & 1n);

const work = mkdtempSync(join(tmpdir(), 'fc-runc-caps-'));
after(() => rmSync(work, { recursive: true, force: true }));
const stubDir = join(work, 'bin');
mkdirSync(stubDir);
writeFileSync(join(stubDir, 'runc'), `#!/bin/sh\necho "runc $*" > ${join(work, 'called')}\n`);
chmodSync(join(stubDir, 'runc'), 0o755);

function wrap(args: string[]) {
  const r = spawnSync('bash', [WRAPPER, ...args], { env: { ...process.env, PATH: `${stubDir}:${process.env['PATH']}` }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(join(work, 'called'), 'utf8').trim();
}

const sets = () => ({ bounding: [...ALL], effective: [...ALL], permitted: [...ALL] });

describe('runc-bounded-caps.sh', () => {
  it('keeps only the bounding set in a privileged container config and passes the arguments on', () => {
    const bundle = join(work, 'bundle');
    mkdirSync(bundle);
    writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.2.0', process: { args: ['/sbin/init'], capabilities: sets() } }));
    const args = ['--root', '/run/x', 'create', '--bundle', bundle, '--pid-file', '/run/x/pid', 'node-1'];
    assert.equal(wrap(args), `runc ${args.join(' ')}`);
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    assert.deepEqual(config.process.capabilities, { bounding: allowed, effective: allowed, permitted: allowed });
    assert.deepEqual(config.process.args, ['/sbin/init']);
  });

  it('does the same for the process of a privileged exec', () => {
    const processFile = join(work, 'process.json');
    writeFileSync(processFile, JSON.stringify({ args: ['cat', '/kind/version'], capabilities: sets() }));
    wrap(['exec', '--process', processFile, '--detach', 'node-1']);
    const proc = JSON.parse(readFileSync(processFile, 'utf8'));
    assert.deepEqual(proc.capabilities, { bounding: allowed, effective: allowed, permitted: allowed });
  });

  it('leaves other runc commands alone', () => {
    assert.equal(wrap(['--root', '/run/x', 'state', 'node-1']), 'runc --root /run/x state node-1');
  });
});
