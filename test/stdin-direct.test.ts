/**
 * Standard input read from its descriptor (capture/input.ts: FdSource) when it is a pipe or a
 * regular file: one read issued ahead into the rest of the chunk, batches that fill when the
 * input is there (not one short batch per 64 KiB read), the same output bytes as from the file,
 * the pipe made 1 MiB, no read left waiting in libuv's pool (a run that stops early on a pipe
 * whose writer stays open still exits at once), and the addon's pipeSize/readable it relies on.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ChunkedInput, type ByteSource } from '../src/capture/input.js';
import { openSource } from '../src/capture/reader.js';
import { fdReadable, fdWatcher, nativeAvailable, setPipeSize } from '../src/crypto/native.js';
import { buildPcap, repoRoot } from './helpers/capture-util.js';
import { makeSyntheticEsp } from './helpers/synthetic-esp.js';

const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-stdin-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const BIN = join(repoRoot(), 'bin/ipsecov2');
const linuxAddon = process.platform === 'linux' && nativeAvailable();

/**
 * A source reading `data` in pieces of `piece` bytes, each read settled when `gate` lets it
 * (at once by default); it counts the reads it was asked for.
 */
class PieceSource implements ByteSource {
  readonly readsAhead = true;
  reads = 0;
  private at = 0;
  gate: (() => Promise<void>) | null = null;
  constructor(private readonly data: Buffer, private readonly piece: number) {}
  async read(target: Buffer, offset: number, length: number): Promise<number> {
    this.reads++;
    if (this.gate) await this.gate();
    const n = Math.min(length, this.piece, this.data.length - this.at);
    this.data.copy(target, offset, this.at, this.at + n);
    this.at += n;
    return n;
  }
  skip(): Promise<number> {
    throw new Error('not used');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

const demo = join(repoRoot(), 'fixtures/demo');

/** The demo capture with its third packet block's length made 7: the reader stops there. */
function brokenDemo(): Buffer {
  const bytes = Buffer.from(readFileSync(join(demo, 'demo.pcapng')));
  for (let off = 0, epb = 0; off + 8 <= bytes.length; off += bytes.readUInt32LE(off + 4)) {
    if (bytes.readUInt32LE(off) === 6 && ++epb === 3) { bytes.writeUInt32LE(7, off + 4); break; }
  }
  return bytes;
}

describe('ChunkedInput: a read issued ahead (readsAhead sources)', () => {
  it('after ensure, the next read is in flight into the rest of the chunk; its bytes come in order', async () => {
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i & 0xff));
    const src = new PieceSource(data, 10_000);
    const inp = new ChunkedInput(src, 1 << 20);
    assert.equal(await inp.ensure(100), true);
    assert.equal(inp.end - inp.pos, 10_000, 'one read');
    assert.equal(src.reads, 2, 'and the next one issued');
    await tick();
    assert.equal(inp.moreReady, true, 'in, not yet taken');
    assert.equal(await inp.ensure(15_000), true);
    assert.equal(inp.end - inp.pos, 20_000);
    assert.ok(inp.buf.subarray(inp.pos, inp.end).equals(data.subarray(0, 20_000)));
  });

  it('moreReady stays false while the read waits, and ensure then waits for it', async () => {
    const data = Buffer.alloc(50_000, 7);
    const src = new PieceSource(data, 10_000);
    const inp = new ChunkedInput(src, 1 << 20);
    await inp.ensure(1);
    let open!: () => void;
    src.gate = () => new Promise<void>((r) => { open = r; });
    // the read issued ahead is the second one: it had no gate; take it, then the third waits
    await tick();
    assert.equal(await inp.ensure(20_000), true);
    assert.equal(src.reads, 3);
    await tick();
    assert.equal(inp.moreReady, false, 'the third read waits');
    const more = inp.ensure(30_000);
    open();
    assert.equal(await more, true);
    assert.equal(inp.end - inp.pos, 30_000);
  });

  it('skip takes the read in flight first; the end of input is seen once', async () => {
    const data = Buffer.from(Array.from({ length: 30_000 }, (_, i) => (i * 7) & 0xff));
    const src = new PieceSource(data, 10_000);
    const inp = new ChunkedInput(src, 1 << 20);
    await inp.ensure(1);
    assert.equal(await inp.skip(15_000), true);
    assert.equal(inp.offset, 15_000);
    assert.equal(await inp.ensure(15_000), true);
    assert.ok(inp.buf.subarray(inp.pos, inp.pos + 15_000).equals(data.subarray(15_000)));
    inp.pos = inp.end;
    assert.equal(await inp.ensure(1), false);
    assert.equal(inp.eof, true);
  });

  it('close does not wait for a read that never comes', async () => {
    const src = new PieceSource(Buffer.alloc(20_000), 10_000);
    const inp = new ChunkedInput(src, 1 << 20);
    await inp.ensure(1);
    src.gate = () => new Promise<void>(() => undefined); // never
    await inp.ensure(15_000); // takes the second read, issues a third that never settles
    await inp.close();
  });
});

describe('reader: batches from a source that reads ahead', () => {
  const frames = Array.from({ length: 3000 }, (_, i) => ({ sec: 1700000000, frac: i, data: Buffer.alloc(200, i & 0xff) }));
  const pcap = buildPcap(frames, { nano: true });

  it('bytes already in: batches fill to the limit, not one read each', async () => {
    const src = new PieceSource(pcap, 4096);
    const r = await openSource(src, 'test', null, {});
    const sizes: number[] = [];
    for (let b = await r.nextBatch(1000); b; b = await r.nextBatch(1000)) sizes.push(b.length);
    await r.close();
    assert.equal(sizes.reduce((a, b) => a + b, 0), 3000);
    assert.ok(sizes.length <= 6, `batches: ${sizes.join(' ')} (a read holds ~19 frames)`);
  });

  it('bytes still on their way: what is there is handed out without waiting', async () => {
    const src = new PieceSource(pcap, 4096);
    const r = await openSource(src, 'test', null, {});
    let release!: () => void;
    src.gate = () => new Promise<void>((res) => { release = res; });
    const first = await r.nextBatch(1000);
    assert.ok(first !== null && first.length > 0 && first.length < 40, `first batch ${first?.length}`);
    src.gate = null;
    release();
    let n = first.length;
    for (let b = await r.nextBatch(1000); b; b = await r.nextBatch(1000)) n += b.length;
    await r.close();
    assert.equal(n, 3000);
  });
});

describe('the addon: pipeSize, readable', { skip: linuxAddon ? false : 'Linux with the addon' }, () => {
  it('a FIFO made 1 MiB; readable only with bytes in it; a file is no pipe', () => {
    const fifo = join(dir, 'fifo-addon');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    // read-write: both ends in one descriptor, no waiting for a peer
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      assert.ok((setPipeSize(fd, 1 << 20) ?? 0) >= 1 << 20);
      assert.equal(fdReadable(fd), false);
      writeSync(fd, Buffer.from('bytes'));
      assert.equal(fdReadable(fd), true);
    } finally {
      closeSync(fd);
    }
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const ffd = openSync(file, 'r');
    try {
      assert.equal(setPipeSize(ffd, 1 << 20), null);
      assert.equal(fdReadable(ffd), true);
    } finally {
      closeSync(ffd);
    }
  });
});

describe('the addon: a readiness watcher on the event loop (fdWatcher)', { skip: linuxAddon ? false : 'Linux with the addon' }, () => {
  it('calls back once per start when bytes come; none for a regular file', async () => {
    const fifo = join(dir, 'fifo-watch');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const calls: number[] = [];
    let woke: () => void = () => undefined;
    const w = fdWatcher(fd, (st) => { calls.push(st); woke(); });
    try {
      assert.ok(w !== null);
      assert.equal(w.start(), true);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(calls, [], 'nothing to read yet');
      const got = new Promise<void>((r) => { woke = r; });
      writeSync(fd, Buffer.from('bytes'));
      await got;
      assert.deepEqual(calls, [0]);
      // stopped after the call: the bytes still unread do not call again until the next start
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(calls, [0]);
      const again = new Promise<void>((r) => { woke = r; });
      assert.equal(w.start(), true);
      await again;
      assert.deepEqual(calls, [0, 0]);
      w.close();
      assert.equal(w.start(), false, 'closed');
    } finally {
      w?.close();
      closeSync(fd);
    }
    const file = join(dir, 'plain-file-watch');
    writeFileSync(file, 'x');
    const ffd = openSync(file, 'r');
    try {
      assert.equal(fdWatcher(ffd, () => undefined), null, 'epoll cannot watch a regular file (EPERM)');
    } finally {
      closeSync(ffd);
    }
  });

  it('a started watcher keeps the process alive; closed, it does not, and never calls back', () => {
    const fifo = join(dir, 'fifo-watch-exit');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const native = join(repoRoot(), 'dist/src/crypto/native.js');
    const script = (close: boolean): string => `
      import { openSync, constants } from 'node:fs';
      import { fdWatcher } from ${JSON.stringify(native)};
      const fd = openSync(${JSON.stringify(fifo)}, constants.O_RDWR | constants.O_NONBLOCK);
      const w = fdWatcher(fd, () => console.log('called'));
      w.start();
      ${close ? 'w.close();' : 'setTimeout(() => { console.log("alive"); w.close(); }, 300);'}`;
    const kept = spawnSync(process.execPath, ['--input-type=module', '-e', script(false)], { encoding: 'utf8', timeout: 10000 });
    assert.equal(kept.stdout.trim(), 'alive', kept.stderr);
    const t0 = Date.now();
    const closed = spawnSync(process.execPath, ['--input-type=module', '-e', script(true)], { encoding: 'utf8', timeout: 10000 });
    assert.equal(closed.status, 0, closed.stderr);
    assert.equal(closed.stdout, '');
    assert.ok(Date.now() - t0 < 5000);
    // dropped without close and collected: closed by its finalizer, the process ends normally
    const dropped = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', `
      import { openSync, constants } from 'node:fs';
      import { fdWatcher } from ${JSON.stringify(native)};
      const fd = openSync(${JSON.stringify(fifo)}, constants.O_RDWR | constants.O_NONBLOCK);
      for (let i = 0; i < 100; i++) fdWatcher(fd, () => undefined);
      globalThis.gc();
      setTimeout(() => { globalThis.gc(); console.log('done'); }, 50);`], { encoding: 'utf8', timeout: 10000 });
    assert.equal(dropped.status, 0, dropped.stderr);
    assert.equal(dropped.stdout.trim(), 'done');
  });
});

describe('CLI: rx from standard input', { skip: linuxAddon ? false : 'Linux with the addon' }, () => {
  const setup = makeSyntheticEsp(dir, 6000);
  const rx = (input: string, out: string, stdin: 'file' | 'pipe' | null): { status: number | null; stderr: string; json: { framesIn: number; cryptoBatchesInline: number; cryptoBatchesOnWorkers: number } } => {
    const args = [BIN, 'rx', '--sa', join(dir, 'sa.yaml'), '--any-direction', stdin ? '-' : input, '-w', `${out}.pcapng`, '--oob', `${out}.jsonl`, '--json'];
    const fd = stdin === 'file' ? openSync(input, 'r') : null;
    const r = stdin === 'pipe'
      ? spawnSync('sh', ['-c', 'cat "$0" | "$@"', input, process.execPath, ...args], { encoding: 'utf8' })
      : spawnSync(process.execPath, args, { encoding: 'utf8', stdio: [fd ?? 'ignore', 'ignore', 'pipe'] });
    if (fd !== null) closeSync(fd);
    return { status: r.status, stderr: r.stderr, json: JSON.parse(r.stderr.trim().split('\n').pop()!) };
  };

  it('frames that come one at a time (a live pipe) each reach the output before the next one comes', async () => {
    const { input } = await setup;
    const bytes = readFileSync(input);
    const records: Buffer[] = [];
    for (let pos = 24; records.length < 6; ) {
      const len = 16 + bytes.readUInt32LE(pos + 8);
      records.push(bytes.subarray(pos, pos + len));
      pos += len;
    }
    const fifo = join(dir, 'live.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    // a FIFO given by path (read from its descriptor) and a socket on standard input (process.stdin)
    for (const via of ['fifo', 'socket'] as const) {
      // every batch to a worker: batches then stay in flight while the next one is read
      const c = spawn(process.execPath, [BIN, 'rx', '--sa', join(dir, 'sa.yaml'), '--any-direction', via === 'fifo' ? fifo : '-', '-w', '-', '--format', 'pcap', '--workers', '1', '--json'],
        { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, IPSECOV2_POOL_EVERY_BATCH: '1' } });
      let stderr = '';
      c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      let out = Buffer.alloc(0);
      let seen: () => void = () => undefined;
      c.stdout!.on('data', (d: Buffer) => { out = Buffer.concat([out, d]); seen(); });
      const recordsOut = (): number => {
        let n = 0;
        for (let pos = 24; pos + 16 <= out.length; n++) pos += 16 + out.readUInt32LE(pos + 8);
        return n;
      };
      const exited = new Promise<number | null>((res) => c.on('exit', (code) => res(code)));
      let sink = via === 'fifo' ? openSync(fifo, 'w') : null;
      const send = (b: Buffer): void => { if (sink !== null) writeSync(sink, b); else c.stdin!.write(b); };
      try {
        send(bytes.subarray(0, 24));
        for (let k = 0; k < records.length; k++) {
          send(records[k]!);
          // the frame must come out while nothing more goes in (it stayed in flight before)
          const t0 = Date.now();
          while (recordsOut() < k + 1 && Date.now() - t0 < 3000) await new Promise<void>((r) => { seen = r; setTimeout(r, 50); });
          assert.equal(recordsOut(), k + 1, `${via}: frame ${k + 1} still not written ${Date.now() - t0} ms after it came; ${stderr}`);
        }
      } catch (e) {
        c.kill('SIGKILL');
        throw e;
      } finally {
        if (sink !== null) closeSync(sink);
        sink = null;
        c.stdin!.end();
      }
      assert.equal(await exited, 0, stderr);
      const j = JSON.parse(stderr.trim().split('\n').pop()!) as { framesOut: number; cryptoBatchesOnWorkers: number; outcomes: { CRYPTO_SUCCESS: number } };
      assert.equal(j.framesOut, records.length);
      // one batch per frame with crypto, each on the worker
      assert.equal(j.cryptoBatchesOnWorkers, j.outcomes.CRYPTO_SUCCESS, stderr);
      assert.ok(j.outcomes.CRYPTO_SUCCESS >= 3, stderr);
    }
  });

  it('a quiet pipe is waited on without wake-ups (no timers), and what comes next is read', async () => {
    const { input } = await setup;
    const bytes = readFileSync(input);
    const head = join(dir, 'quiet-head.pcap');
    const rest = join(dir, 'quiet-rest.pcap');
    writeFileSync(head, bytes.subarray(0, 24));
    writeFileSync(rest, bytes.subarray(24));
    const out = join(dir, 'quiet');
    // the header, 2.5 s of silence, the frames; the CLI's process id first on stdout
    const c = spawn('sh', ['-c', `{ cat '${head}'; sleep 2.5; cat '${rest}'; } | { sh -c 'echo "PID $$"; exec "$@"' sh "$@"; echo "EXIT $?"; }`, 'sh',
      process.execPath, BIN, 'rx', '--sa', join(dir, 'sa.yaml'), '--any-direction', '-', '-w', `${out}.pcapng`, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    c.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    const exited = new Promise<void>((res) => c.on('exit', () => res()));
    await new Promise((r) => setTimeout(r, 1000));
    const pid = Number(/PID (\d+)/.exec(stdout)?.[1]);
    const switches = (): number => Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'))![1]);
    const a = switches();
    await new Promise((r) => setTimeout(r, 1000));
    const idle = switches() - a;
    await exited;
    assert.match(stdout, /EXIT 0/);
    // timers every 1-8 ms made ~125 wake-ups a second here
    assert.ok(idle < 20, `the main thread woke ${idle} times in 1 s of silence`);
    const f = rx(input, join(dir, 'quiet-file'), null);
    assert.equal(f.status, 0, f.stderr);
    assert.ok(readFileSync(`${out}.pcapng`).equals(readFileSync(join(dir, 'quiet-file.pcapng'))));
  });

  it('a pipe and a redirected file give the bytes a file gives; a redirected file is read in whole chunks', async () => {
    const { input } = await setup;
    const f = rx(input, join(dir, 'f'), null);
    const p = rx(input, join(dir, 'p'), 'pipe');
    const s = rx(input, join(dir, 's'), 'file');
    for (const r of [f, p, s]) assert.equal(r.status, 0, r.stderr);
    for (const x of ['p', 's']) {
      assert.ok(readFileSync(join(dir, `${x}.pcapng`)).equals(readFileSync(join(dir, 'f.pcapng'))), x);
      assert.ok(readFileSync(join(dir, `${x}.jsonl`)).equals(readFileSync(join(dir, 'f.jsonl'))), x);
    }
    const batches = (j: typeof f.json): number => j.cryptoBatchesInline + j.cryptoBatchesOnWorkers;
    // before: 64 KiB stream chunks, one short batch each
    assert.ok(batches(s.json) <= batches(f.json) + 2, `stdin file ${batches(s.json)} batches, file ${batches(f.json)}`);
  });

  it('a FIFO given by path: the bytes a file gives; a broken capture with its writer still open ends the run at once', async () => {
    const { input } = await setup;
    const fifo = join(dir, 'in.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const feeder = spawn('sh', ['-c', 'cat "$0" > "$1"', input, fifo], { stdio: 'ignore' });
    const r = spawnSync(process.execPath, [BIN, 'rx', '--sa', join(dir, 'sa.yaml'), '--any-direction', fifo, '-w', join(dir, 'q.pcapng'), '--oob', join(dir, 'q.jsonl'), '--quiet'], { encoding: 'utf8' });
    await new Promise((res) => feeder.on('exit', res));
    assert.equal(r.status, 0, r.stderr);
    const f = rx(input, join(dir, 'f2'), null);
    assert.equal(f.status, 0, f.stderr);
    assert.ok(readFileSync(join(dir, 'q.pcapng')).equals(readFileSync(join(dir, 'f2.pcapng'))));
    assert.ok(readFileSync(join(dir, 'q.jsonl')).equals(readFileSync(join(dir, 'f2.jsonl'))));
    // the broken demo capture, its writer then asleep for 30 s
    const bytes = brokenDemo();
    const broken = join(dir, 'broken-fifo.pcapng');
    writeFileSync(broken, bytes);
    const writer = spawn('sh', ['-c', '{ cat "$0"; exec sleep 30; } > "$1"', broken, fifo], { stdio: 'ignore', detached: true });
    const t0 = Date.now();
    const b = await new Promise<{ code: number | null; stderr: string }>((res) => {
      const c = spawn(process.execPath, [BIN, 'rx', '--sa', join(demo, 'demo-sas.yaml'), fifo, '-w', join(dir, 'bf.pcapng')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      c.on('exit', (code) => res({ code, stderr: err }));
    });
    const ms = Date.now() - t0;
    process.kill(-writer.pid!, 'SIGTERM'); // the sleeping writer: this test's own process group
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.stderr, /invalid length 7; stopped reading/);
    assert.ok(ms < 5000, `exited after ${ms} ms with the FIFO's writer still open`);
  });

  /**
   * Start the CLI (rx on the demo SAs, output `out`) on an input nothing more is written to, and
   * Ctrl-C it once after 1 s. `feeder`: a shell command whose output is piped into the CLI's
   * standard input (a real pipe, its writer left open); null: the CLI is spawned directly, its
   * standard input a socket pair. Returns the exit status (or 'still running' 5 s after the
   * Ctrl-C: then a second one ends it), the milliseconds to exit, and stderr.
   */
  async function ctrlCBeforeFrames(args: string[], feeder: string | null, out: string): Promise<{ code: number | null | string; ms: number; stderr: string }> {
    const cli = [process.execPath, BIN, 'rx', '--sa', join(demo, 'demo-sas.yaml'), ...args, '-w', out];
    // through sh: the inner sh prints its process id and becomes the CLI; the exit status follows
    const c = feeder === null
      ? spawn(cli[0]!, cli.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `${feeder} | { sh -c 'echo "PID $$"; exec "$@"' sh "$@"; echo "EXIT $?"; }`, 'sh', ...cli], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let ended: () => void = () => undefined;
    const done = new Promise<void>((res) => { ended = res; });
    c.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); if (/EXIT \d+/.test(stdout)) ended(); });
    c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<void>((res) => c.on('exit', () => res()));
    if (feeder === null) void exited.then(ended);
    await new Promise((r) => setTimeout(r, 1000));
    const pid = feeder === null ? c.pid! : Number(/PID (\d+)/.exec(stdout)?.[1]);
    const t0 = Date.now();
    process.kill(pid, 'SIGINT');
    const first = await Promise.race([done.then(() => 'ended'), new Promise<string>((r) => setTimeout(() => r('still running'), 5000))]);
    const ms = Date.now() - t0;
    if (first === 'still running') process.kill(pid, 'SIGINT'); // the second Ctrl-C always ends it
    await done;
    if (feeder !== null) process.kill(-c.pid!, 'SIGTERM'); // the silent writer: this test's own process group
    await exited;
    const code = first === 'still running' ? first : feeder === null ? c.exitCode : Number(/EXIT (\d+)/.exec(stdout)?.[1]);
    return { code, ms, stderr };
  }

  it('a FIFO no writer has opened yet: the first Ctrl-C ends the run (exit 130, nothing written)', async () => {
    const fifo = join(dir, 'lonely.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const out = join(dir, 'lonely.pcapng');
    const r = await ctrlCBeforeFrames([fifo], null, out);
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.ms < 2000, `exited ${r.ms} ms after the Ctrl-C`);
    assert.match(r.stderr, /interrupted: stopped before .*lonely\.fifo began a capture: no frames read, no outputs written/);
    assert.ok(!existsSync(out), 'no output written');
  });

  it('standard input nobody writes to: the first Ctrl-C ends the run, for a pipe (read from its descriptor) and a socket (process.stdin)', async () => {
    const out1 = join(dir, 'quiet-pipe.pcapng');
    const a = await ctrlCBeforeFrames(['-'], 'exec sleep 30', out1);
    const out2 = join(dir, 'quiet-socket.pcapng');
    const b = await ctrlCBeforeFrames(['-'], null, out2);
    for (const [r, out] of [[a, out1], [b, out2]] as const) {
      assert.equal(r.code, 130, r.stderr);
      assert.ok(r.ms < 2000, `exited ${r.ms} ms after the Ctrl-C`);
      assert.match(r.stderr, /interrupted: stopped before standard input began a capture: no frames read, no outputs written/);
      assert.ok(!existsSync(out), 'no output written');
    }
  });

  it('a Ctrl-C after the capture header, before any frame: valid empty outputs, exit 130', async () => {
    const { input } = await setup;
    const head = join(dir, 'head-only.pcap');
    writeFileSync(head, readFileSync(input).subarray(0, 24));
    const out = join(dir, 'head-only.pcapng');
    const r = await ctrlCBeforeFrames(['-', '--any-direction'], `{ cat '${head}'; exec sleep 30; }`, out);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /0 frames[^\n]*→ 0 frames/);
    assert.match(r.stderr, /link types: none/);
    assert.match(r.stderr, /interrupted: the outputs hold the first 0 frames/);
    assert.equal(readFileSync(out).readUInt32LE(0), 0x0a0d0d0a, 'a pcapng section header');
  });

  it('the pipes on standard input and output are made 1 MiB (F_GETPIPE_SZ, read by python3 at the other end)', async (t) => {
    if (spawnSync('python3', ['-c', 'import fcntl']).status !== 0) { t.skip('no python3'); return; }
    const { input } = await setup;
    const getSize = 'import fcntl, sys; f = sys.argv[1]; fd = int(sys.argv[2])';
    // writer: the whole capture, then the size of the pipe it wrote into (grown by the reader first)
    const feed = `${getSize}\nimport os\nd = open(f, "rb").read()\nmv = memoryview(d)\nwhile mv: mv = mv[os.write(fd, mv):]\nprint(fcntl.fcntl(fd, 1032), file=sys.stderr)`;
    // reader of standard output: everything, then the size of its pipe
    const drain = `${getSize}\nsys.stdin.buffer.read()\nprint(fcntl.fcntl(fd, 1032), file=sys.stderr)`;
    const sh = spawnSync('sh', ['-c', `python3 -c '${feed}' '${input}' 1 | '${process.execPath}' '${BIN}' rx --sa '${join(dir, 'sa.yaml')}' --any-direction - -w - --quiet | python3 -c '${drain}' - 0`], { encoding: 'utf8' });
    assert.equal(sh.status, 0, sh.stderr);
    assert.deepEqual(sh.stderr.trim().split('\n'), [String(1 << 20), String(1 << 20)]);
  });

  it('a broken capture on a pipe whose writer stays open: the run ends at once, exit 1', async () => {
    const bytes = brokenDemo();
    const broken = join(dir, 'broken.pcapng');
    writeFileSync(broken, bytes);
    // a real pipe (spawn's own stdio pipes are socket pairs); its writer sleeps 30 s after the bytes
    const sh = spawn('sh', ['-c', '(cat "$0"; exec sleep 30) | { "$@"; echo "EXIT $?" >&2; }', broken, process.execPath, BIN, 'rx', '--sa', join(demo, 'demo-sas.yaml'), '-', '-w', join(dir, 'b.pcapng')], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    const t0 = Date.now();
    const ms = await new Promise<number>((res) => sh.stderr.on('data', (c: Buffer) => { stderr += c.toString(); if (/EXIT \d+/.test(stderr)) res(Date.now() - t0); }));
    process.kill(-sh.pid!, 'SIGTERM'); // the sleeping writer: this test's own process group
    assert.match(stderr, /EXIT 1/, stderr);
    assert.match(stderr, /invalid length 7; stopped reading/);
    assert.ok(ms < 5000, `exited after ${ms} ms with the pipe still open`);
  });
});
