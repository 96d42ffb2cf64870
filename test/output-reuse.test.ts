/**
 * A re-run over a large old output overwrites that file in place (src/capture/tmpfiles.ts
 * reuseOldOutput): the same inode afterwards, cut to the new length, byte-identical to a run onto
 * a new name. Never when anything else could see the change: the old output open elsewhere (a
 * write lease says so), a second hard link, another owner, a small file, no addon, or
 * IPSECOV2_NO_REUSE=1; then it is replaced at the end as before, and an open reader keeps the old
 * bytes.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { REUSE_MIN_BYTES } from '../src/capture/tmpfiles.js';
import { nativeAvailable, soleOpener } from '../src/crypto/native.js';
import { writeCorpusInputs } from './helpers/cli-inputs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ipsecov2');
const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-reuse-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const skip = nativeAvailable() && process.platform === 'linux' ? false : 'needs the native addon on Linux (the lease that tells nobody else has the file open)';

function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 60_000 });
  return { status: r.status, stderr: r.stderr.toString() };
}

let sa = '';
let input = '';
let refCapture: Buffer;
let refOob: Buffer;

/** The file holds exactly `want` (its size first: a diff of 32 MiB against a few kB would exhaust the heap). */
function same(path: string, want: Buffer, what = path): void {
  assert.equal(statSync(path).size, want.length, `${what}: size`);
  assert.ok(readFileSync(path).equals(want), `${what}: bytes`);
}

/** An old output of `size` bytes (sparse: large to stat, nothing on disk) starting with `OLD!`. */
function oldOutput(path: string, size = REUSE_MIN_BYTES + 4096): number {
  writeFileSync(path, 'OLD!');
  truncateSync(path, size);
  return statSync(path).ino;
}

function rx(d: string, env: NodeJS.ProcessEnv = {}, workers = '2'): void {
  const r = run(['rx', '--sa', sa, input, '-w', join(d, 'out.pcapng'), '--oob', join(d, 'out.jsonl'), '--workers', workers, '--quiet'], env);
  assert.equal(r.status, 0, r.stderr);
}

function fresh(name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  return d;
}

describe('reusing an old output', () => {
  before(async () => {
    ({ sa, input } = await writeCorpusInputs(dir));
    const d = fresh('ref');
    rx(d);
    refCapture = readFileSync(join(d, 'out.pcapng'));
    refOob = readFileSync(join(d, 'out.jsonl'));
  });

  it('soleOpener: true for the only descriptor, false while another is open in this process or another', { skip }, () => {
    const p = join(dir, 'lease.txt');
    writeFileSync(p, 'x');
    const fd = openSync(p, 'r+');
    try {
      assert.equal(soleOpener(fd), true);
      const other = openSync(p, 'r');
      assert.equal(soleOpener(fd), false);
      closeSync(other);
      assert.equal(soleOpener(fd), true);
    } finally {
      closeSync(fd);
    }
  });

  it('soleOpener: false while another process has the file open', { skip }, async () => {
    const p = join(dir, 'lease2.txt');
    writeFileSync(p, 'x');
    const holder = spawn('sh', ['-c', 'exec sleep 30 < "$0"', p], { stdio: 'ignore' });
    const fd = openSync(p, 'r+');
    try {
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(soleOpener(fd), false);
    } finally {
      holder.kill();
      closeSync(fd);
    }
  });

  it('a large old output, capture and OOB: overwritten in place (same inode), cut to the new length, the same bytes as onto a new name', { skip }, () => {
    const d = fresh('reused');
    const inoW = oldOutput(join(d, 'out.pcapng'));
    const inoO = oldOutput(join(d, 'out.jsonl'));
    for (const workers of ['0', '2']) {
      rx(d, {}, workers);
      assert.equal(statSync(join(d, 'out.pcapng')).ino, inoW, 'the capture file reused');
      assert.equal(statSync(join(d, 'out.jsonl')).ino, inoO, 'the OOB file reused');
      same(join(d, 'out.pcapng'), refCapture, `capture, ${workers} workers`);
      same(join(d, 'out.jsonl'), refOob);
      assert.deepEqual(readdirSync(d).sort(), ['out.jsonl', 'out.pcapng'], 'nothing left beside them');
      // large again for the next round
      truncateSync(join(d, 'out.pcapng'), REUSE_MIN_BYTES + 1);
      truncateSync(join(d, 'out.jsonl'), REUSE_MIN_BYTES + 1);
    }
    // without the write thread (libuv's pool writes it) too
    rx(d, { IPSECOV2_NO_WRITE_THREAD: '1' });
    assert.equal(statSync(join(d, 'out.pcapng')).ino, inoW);
    same(join(d, 'out.pcapng'), refCapture);
  });

  it('a symbolic link to a large old output: the file it names is reused, the link stays', { skip }, () => {
    const d = fresh('link');
    const real = join(d, 'real.pcapng');
    const ino = oldOutput(real);
    symlinkSync(real, join(d, 'out.pcapng'));
    rx(d);
    assert.ok(lstatSync(join(d, 'out.pcapng')).isSymbolicLink());
    assert.equal(readlinkSync(join(d, 'out.pcapng')), real);
    assert.equal(statSync(real).ino, ino);
    same(real, refCapture);
  });

  it('not reused while open elsewhere: replaced at the end, the open reader keeps the old bytes', () => {
    const d = fresh('open');
    const ino = oldOutput(join(d, 'out.pcapng'));
    const fd = openSync(join(d, 'out.pcapng'), 'r');
    try {
      rx(d);
      assert.notEqual(statSync(join(d, 'out.pcapng')).ino, ino);
      same(join(d, 'out.pcapng'), refCapture);
      const b = Buffer.alloc(4);
      readSync(fd, b, 0, 4, 0);
      assert.equal(b.toString(), 'OLD!');
    } finally {
      closeSync(fd);
    }
  });

  it('not reused: a second hard link (which keeps the old bytes), a small file, IPSECOV2_NO_REUSE=1, no addon', () => {
    const d = fresh('others');
    const ino = oldOutput(join(d, 'out.pcapng'));
    linkSync(join(d, 'out.pcapng'), join(d, 'other-name'));
    rx(d);
    assert.notEqual(statSync(join(d, 'out.pcapng')).ino, ino);
    assert.equal(readFileSync(join(d, 'other-name')).subarray(0, 4).toString(), 'OLD!');
    same(join(d, 'out.pcapng'), refCapture);
    rmSync(join(d, 'other-name'));

    const small = oldOutput(join(d, 'out.pcapng'), REUSE_MIN_BYTES - 1);
    rx(d);
    assert.notEqual(statSync(join(d, 'out.pcapng')).ino, small, 'a small file');

    for (const env of [{ IPSECOV2_NO_REUSE: '1' }, { IPSECOV2_NO_NATIVE: '1' }]) {
      const i = oldOutput(join(d, 'out.pcapng'));
      rx(d, env);
      assert.notEqual(statSync(join(d, 'out.pcapng')).ino, i, JSON.stringify(env));
      same(join(d, 'out.pcapng'), refCapture);
    }
  });

  it('a run that fails after taking an old output leaves no temporary file', { skip: skip || (process.getuid?.() === 0 ? false : 'mknod needs root') }, () => {
    const d = fresh('fails');
    oldOutput(join(d, 'out.pcapng'));
    const full = join(dir, 'full');
    assert.equal(spawnSync('mknod', ['-m', '666', full, 'c', '1', '7']).status, 0);
    const r = run(['rx', '--sa', sa, input, '-w', join(d, 'out.pcapng'), '--oob', full, '--quiet']);
    assert.equal(r.status, 1, r.stderr);
    assert.deepEqual(readdirSync(d).filter((f) => f.startsWith('.')), []);
  });
});
