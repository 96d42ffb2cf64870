/**
 * Capture files written by a thread of the addon's own (crypto/native.ts NativeWriteThread,
 * capture/writer.ts ThreadFileSink) instead of through libuv's pool (FileSink,
 * IPSECOV2_NO_WRITE_THREAD=1): every write lands at its position, in order, however many are
 * queued; a failed write is reported with its errno; and the CLI's outputs are byte-identical
 * either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeAvailable, NativeWriteThread } from '../src/crypto/native.js';
import { repoRoot } from './helpers/capture-util.js';
import { makeSyntheticEsp } from './helpers/synthetic-esp.js';
import { Prng } from './tx-helpers.js';

const skip = nativeAvailable() && process.platform === 'linux' ? false : 'needs the native addon on Linux';
const BIN = join(repoRoot(), 'bin', 'ipsecov2');

/** A write thread whose callback ends the current wait. */
function startThread(): { t: NativeWriteThread; until: (id: number) => Promise<void> } {
  let wake: (() => void) | null = null;
  const t = NativeWriteThread.start(() => {
    const w = wake;
    wake = null;
    w?.();
  });
  assert.ok(t, 'the addon has write threads');
  const until = (id: number): Promise<void> =>
    new Promise((resolve) => {
      if (t.waitFor(id)) resolve();
      else wake = resolve;
    });
  return { t, until };
}

test('write thread: 300 writes of 1 B to 70 kB land at their positions, in order, past the ring of 64', { skip }, async () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-wthread-'));
  try {
    const f = join(d, 'out');
    const fd = openSync(f, 'w');
    const { t, until } = startThread();
    const r = new Prng(11);
    const chunks: Buffer[] = [];
    let pos = 0;
    for (let id = 1; id <= 300; id++) {
      const c = r.bytes(1 + r.int(70000));
      t.write(id, fd, c, pos);
      pos += c.length;
      chunks.push(c);
    }
    await until(300);
    for (let id = 1; id <= 300; id++) assert.ok(t.isDone(id), `write ${id} done`);
    assert.equal(t.isDone(301), false);
    assert.equal(t.firstErrno(), 0);
    t.close();
    closeSync(fd);
    assert.ok(readFileSync(f).equals(Buffer.concat(chunks)));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('write thread: writev of 1 to 3000 pieces (past IOV_MAX, 1024) of two buffers lands in order, between plain writes', { skip }, async () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-wthread-'));
  try {
    const f = join(d, 'out');
    const fd = openSync(f, 'w');
    const { t, until } = startThread();
    const r = new Prng(12);
    const expect: Buffer[] = [];
    let pos = 0;
    let id = 0;
    for (const pieces of [1, 7, 1024, 1025, 3000]) {
      const bytes = r.bytes(pieces * 64 + 100);
      const aux = r.bytes(5000);
      const iov = new Int32Array(pieces * 2 + 2); // longer than needed: only n pairs are read
      // pieces out of order and of 1..64 bytes, some overlapping, so a piece skipped or repeated
      // shows; one in three from aux (offset -(k + 1))
      let total = 0;
      for (let i = 0; i < pieces; i++) {
        const fromAux = r.int(3) === 0;
        const src = fromAux ? aux : bytes;
        const at = r.int(src.length - 64);
        const len = 1 + r.int(64);
        iov[2 * i] = fromAux ? -(at + 1) : at;
        iov[2 * i + 1] = len;
        expect.push(Buffer.from(src.subarray(at, at + len)));
        total += len;
      }
      t.writev(++id, fd, bytes, iov, pieces, pos, aux);
      pos += total;
      const plain = r.bytes(1 + r.int(5000));
      t.write(++id, fd, plain, pos);
      pos += plain.length;
      expect.push(plain);
    }
    await until(id);
    assert.equal(t.firstErrno(), 0);
    t.close();
    closeSync(fd);
    assert.ok(readFileSync(f).equals(Buffer.concat(expect)));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('write thread: writev arguments are checked (a piece outside its buffer, empty, no pieces)', { skip }, () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-wthread-'));
  try {
    const fd = openSync(join(d, 'out'), 'w');
    const { t } = startThread();
    const b = Buffer.alloc(100);
    assert.throws(() => t.writev(1, fd, b, Int32Array.of(90, 11), 1, 0), RangeError);
    assert.throws(() => t.writev(1, fd, b, Int32Array.of(-1, 5), 1, 0), RangeError, 'in aux, and no aux');
    assert.throws(() => t.writev(1, fd, b, Int32Array.of(-91, 11), 1, 0, Buffer.alloc(100)), RangeError, 'past the end of aux');
    assert.throws(() => t.writev(1, fd, b, Int32Array.of(0, 0), 1, 0), RangeError);
    assert.throws(() => t.writev(1, fd, b, Int32Array.of(0, 5), 2, 0), TypeError, 'fewer pairs than pieces');
    assert.throws(() => t.writev(1, fd, b, Int32Array.of(0, 5), 0, 0), TypeError);
    assert.throws(() => t.writev(1, fd, b, Int32Array.of(0, 5), 1, -1), TypeError);
    t.close();
    closeSync(fd);
    assert.equal(readFileSync(join(d, 'out')).length, 0);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('write thread: a failed write keeps its errno, the writes after it are done too; bad arguments throw', { skip }, async () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-wthread-'));
  try {
    const f = join(d, 'ro');
    writeFileSync(f, 'x');
    const fd = openSync(f, 'r'); // not open for writing: EBADF
    const { t, until } = startThread();
    t.write(1, fd, Buffer.from('abc'), 0);
    t.write(2, fd, Buffer.from('def'), 3);
    await until(2);
    assert.ok(t.isDone(1) && t.isDone(2));
    assert.equal(t.firstErrno(), constants.errno.EBADF);
    assert.throws(() => t.write(3, fd, Buffer.alloc(0), 0), TypeError);
    assert.throws(() => t.write(3, fd, Buffer.from('a'), -1), TypeError);
    assert.throws(() => t.write(3, -1, Buffer.from('a'), 0), TypeError);
    t.close();
    assert.throws(() => t.write(3, fd, Buffer.from('a'), 0), TypeError, 'closed');
    closeSync(fd);
    assert.equal(readFileSync(f, 'utf8'), 'x');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('write thread: rx and tx outputs (pcapng, pcap; inline and 2 workers) are byte-identical to libuv writes', { skip }, async () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-wthread-'));
  try {
    const esp = await makeSyntheticEsp(d, 20000);
    const run = (args: string[], noThread: boolean): { json: { outputWriter: string; framesIn: number }; out: Buffer; oob: string | null } => {
      const tag = `${args.join('-').replace(/[^a-z0-9]/gi, '')}-${noThread}`;
      const out = join(d, `${tag}.cap`);
      const oob = args[0] === 'rx' ? join(d, `${tag}.jsonl`) : null;
      const r = spawnSync(process.execPath, [BIN, ...args, '-w', out, ...(oob ? ['--oob', oob] : []), '--quiet', '--json'], {
        encoding: 'utf8',
        env: { ...process.env, IPSECOV2_NO_WRITE_THREAD: noThread ? '1' : '' },
      });
      assert.equal(r.status, 0, r.stderr);
      const json = JSON.parse(r.stderr.trim().split('\n').pop()!) as { outputWriter: string; framesIn: number };
      return { json, out: readFileSync(out), oob: oob ? readFileSync(oob, 'utf8') : null };
    };
    const cases: string[][] = [];
    for (const fmt of ['pcapng', 'pcap']) {
      for (const w of ['0', '2']) cases.push(['rx', '--sa', esp.saFile, '--any-direction', esp.input, '--format', fmt, '--workers', w]);
    }
    cases.push(['tx', '--sa', esp.saFile, join(d, 'plain.pcap'), '--iv-seed', '0a0b', '--workers', '2']);
    for (const args of cases) {
      const a = run(args, false);
      const b = run(args, true);
      assert.equal(a.json.outputWriter, 'thread', args.join(' '));
      assert.equal(b.json.outputWriter, 'file', args.join(' '));
      assert.ok(a.out.length > 4 << 20, `several 1 MiB writes (${a.out.length} bytes)`);
      assert.ok(a.out.equals(b.out), `capture differs: ${args.join(' ')}`);
      assert.equal(a.oob, b.oob);
      assert.ok(a.json.framesIn >= 20000);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
