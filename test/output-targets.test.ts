/**
 * Output targets that are not a new regular file (src/capture/tmpfiles.ts outputPlace): a device
 * such as /dev/null and a FIFO are written in place, as `tcpdump -w` does, never replaced by a
 * renamed temporary file (which, for root, would have turned /dev/null into a regular file for
 * the whole system); a symbolic link to a file stays a link; two outputs, or an output and the
 * input, naming one file are refused before anything is written.
 *
 * The device here is a private node (`mknod DIR/null c 1 3`), never the system's /dev/null: a
 * regression replaces that node, not /dev/null.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { outputPlace, sameOutputFile } from '../src/capture/tmpfiles.js';
import { LiveOob } from '../src/cli/live.js';
import { writeCorpusInputs } from './helpers/cli-inputs.js';
import { buildPcap, bytesOf } from './helpers/capture-util.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ipsecov2');
const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-targets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
  return { status: r.status, stderr: r.stderr.toString() };
}

const isRoot = process.getuid?.() === 0;
let sa = '';
let input = '';
/** The outputs of a run onto new regular files: what every other target must receive. */
let refCapture: Buffer;
let refOob: Buffer;

/** A private character device equal to /dev/null, or /dev/full with minor 7 (root only). */
function nullNode(name: string, minor = 3): string {
  const p = join(dir, name);
  const r = spawnSync('mknod', ['-m', '666', p, 'c', '1', String(minor)]);
  assert.equal(r.status, 0, `mknod: ${r.stderr}`);
  assert.ok(statSync(p).isCharacterDevice());
  return p;
}

/** Hidden temporary files (`.<name>.<pid>.tmp`) left in `d`. */
function hidden(d: string): string[] {
  return readdirSync(d).filter((f) => f.startsWith('.'));
}

describe('output targets', { skip: process.platform === 'win32' ? 'POSIX file types' : false }, () => {
  before(async () => {
    ({ sa, input } = await writeCorpusInputs(dir));
    const r = run(['rx', '--sa', sa, input, '-w', join(dir, 'ref.pcapng'), '--oob', join(dir, 'ref.jsonl'), '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    refCapture = readFileSync(join(dir, 'ref.pcapng'));
    refOob = readFileSync(join(dir, 'ref.jsonl'));
    assert.ok(refCapture.length > 1000 && refOob.length > 100);
  });

  it('outputPlace: a device or a FIFO is written in place; a link to a file names the file; a new name is created', () => {
    const fifo = join(dir, 'place.fifo');
    spawnSync('mkfifo', [fifo]);
    assert.deepEqual(outputPlace(fifo), { direct: true, fifo: true, path: fifo });
    assert.deepEqual(outputPlace('/dev/null'), { direct: true, fifo: false, path: '/dev/null' });
    assert.deepEqual(outputPlace(join(dir, 'no-such')), { direct: false, fifo: false, path: join(dir, 'no-such') });
    const link = join(dir, 'place.link');
    symlinkSync(input, link);
    assert.deepEqual(outputPlace(link), { direct: false, fifo: false, path: input });
    assert.equal(sameOutputFile(link, input), true);
    assert.equal(sameOutputFile('/dev/null', '/dev/null'), false, 'a device may be shared');
    assert.equal(sameOutputFile('-', '-'), false);
    assert.equal(sameOutputFile(join(dir, 'a'), `${dir}/./a`), true, 'the same new name, spelt two ways');
  });

  it('a device: -w and --oob both onto it, at 0 and 2 workers; it stays a device and nothing is left beside it', { skip: isRoot ? false : 'mknod needs root' }, () => {
    const sub = join(dir, 'dev');
    mkdirSync(sub);
    const dev = nullNode('dev/null');
    for (const w of ['0', '2']) {
      const r = run(['rx', '--sa', sa, input, '-w', dev, '--oob', dev, '--workers', w, '--quiet']);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(lstatSync(dev).isCharacterDevice(), 'still a device');
      assert.deepEqual(hidden(sub), [], 'no temporary file beside it');
    }
    // Many 1 MiB writes onto a device that takes them at once: each write's drain came before the
    // writer waited for it, which once left the run waiting for ever (exit 70)
    const big = join(dir, 'big.pcap');
    writeFileSync(big, buildPcap(Array.from({ length: 6000 }, (_, i) => ({ sec: 1_700_000_000 + i, frac: 0, data: bytesOf(1400, i) }))));
    for (let i = 0; i < 3; i++) {
      const r = run(['rx', '--sa', sa, big, '-w', dev, '--oob', dev, '--quiet']);
      assert.equal(r.status, 0, r.stderr);
    }
    assert.ok(lstatSync(dev).isCharacterDevice());
    // tx too, and pcap output
    const t = run(['tx', '--sa', sa, input, '-w', dev, '--format', 'pcap', '--iv-seed', '01', '--quiet']);
    assert.equal(t.status, 0, t.stderr);
    assert.ok(lstatSync(dev).isCharacterDevice());
  });

  it('a device that refuses the bytes (like /dev/full): exit 1, one line naming it, no stack trace; it stays a device', { skip: isRoot ? false : 'mknod needs root' }, () => {
    const full = nullNode('full', 7);
    const out = join(dir, 'beside-full.pcapng');
    for (const args of [['-w', full], ['-w', out, '--oob', full], ['-w', full, '--oob', full], ['-w', full, '--workers', '0']]) {
      const r = run(['rx', '--sa', sa, input, ...args, '--quiet']);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^ipsecov2: ${full}: .*no space left on device`), args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(lstatSync(full).isCharacterDevice());
    }
  });

  it('a missing output directory, a path through a file, an input directory: one line naming the user\'s path', () => {
    let r = run(['rx', '--sa', sa, input, '-w', join(dir, 'no-dir', 'x.pcapng'), '--quiet']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `ipsecov2: ${join(dir, 'no-dir', 'x.pcapng')}: no such file or directory\n`, 'not the temporary name');
    r = run(['rx', '--sa', sa, input, '-w', join(input, 'x.pcapng'), '--quiet']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `ipsecov2: ${join(input, 'x.pcapng')}: a part of the path is not a directory\n`);
    r = run(['rx', '--sa', sa, dir, '-w', join(dir, 'y.pcapng'), '--quiet']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `ipsecov2: ${dir}: is a directory, not a capture\n`);
  });

  it('a FIFO: the reader on the other side gets exactly the bytes a file gets; it stays a FIFO', async () => {
    for (const which of ['-w', '--oob'] as const) {
      const fifo = join(dir, `out${which}.fifo`);
      spawnSync('mkfifo', [fifo]);
      const got = join(dir, `got${which}`);
      const fd = openSync(got, 'w');
      const cat = spawn('cat', [fifo], { stdio: ['ignore', fd, 'inherit'] });
      const ended = new Promise<number | null>((res) => cat.on('exit', res));
      const args = which === '-w' ? ['-w', fifo, '--oob', join(dir, `o${which}.jsonl`)] : ['-w', join(dir, `o${which}.pcapng`), '--oob', fifo];
      const r = spawn(process.execPath, [BIN, 'rx', '--sa', sa, input, ...args, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      r.stderr.on('data', (b: Buffer) => { err += b; });
      const status = await new Promise<number | null>((res) => r.on('exit', res));
      assert.equal(status, 0, err);
      // a FIFO replaced by a file would leave cat waiting for a writer for ever
      const timer = setTimeout(() => cat.kill(), 10_000);
      assert.equal(await ended, 0, 'cat read the FIFO to its end');
      clearTimeout(timer);
      closeSync(fd);
      assert.ok(lstatSync(fifo).isFIFO(), 'still a FIFO');
      assert.deepEqual(readFileSync(got), which === '-w' ? refCapture : refOob);
    }
  });

  it('a FIFO nobody reads yet: Ctrl-C ends the wait (exit 130, nothing left behind), at once', async () => {
    for (const which of ['-w', '--oob'] as const) {
      const sub = join(dir, `wait${which}`);
      mkdirSync(sub);
      const fifo = join(sub, 'f');
      spawnSync('mkfifo', [fifo]);
      const other = which === '-w' ? ['--oob', join(sub, 'o.jsonl')] : ['-w', join(sub, 'o.pcapng')];
      const r = spawn(process.execPath, [BIN, 'rx', '--sa', sa, input, which, fifo, ...other], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      r.stderr.on('data', (b: Buffer) => { err += b; });
      const exited = new Promise<number | null>((res) => r.on('exit', res));
      await new Promise((res) => setTimeout(res, 700));
      const t0 = Date.now();
      r.kill('SIGINT');
      const timer = setTimeout(() => r.kill('SIGKILL'), 10_000);
      const status = await exited;
      clearTimeout(timer);
      assert.equal(status, 130, err);
      assert.ok(Date.now() - t0 < 3000, 'ended at once');
      assert.match(err, /interrupted: stopped while waiting for a program to read the FIFO .*\/f: no frames written/);
      assert.deepEqual(readdirSync(sub), ['f'], 'no output, no temporary file');
      assert.ok(lstatSync(fifo).isFIFO());
    }
  });

  it('a FIFO whose reader stops reading: a second Ctrl-C exits at once (no thread held in a write)', async () => {
    const fifo = join(dir, 'stuck.fifo');
    spawnSync('mkfifo', [fifo]);
    // opens the FIFO for reading and never reads: the writes fill the pipe and wait
    const holder = spawn('sh', ['-c', 'exec sleep 60 < "$0"', fifo], { stdio: 'ignore' });
    const big = join(dir, 'stuck-in.pcap');
    writeFileSync(big, buildPcap(Array.from({ length: 3000 }, (_, i) => ({ sec: 1_700_000_000 + i, frac: 0, data: bytesOf(1400, i) }))));
    const r = spawn(process.execPath, [BIN, 'rx', '--sa', sa, big, '-w', fifo, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((res) => r.on('exit', res));
    try {
      await new Promise((res) => setTimeout(res, 1500));
      assert.equal(r.exitCode, null, 'still waiting for the reader');
      r.kill('SIGINT');
      await new Promise((res) => setTimeout(res, 300));
      r.kill('SIGINT');
      const timer = setTimeout(() => r.kill('SIGKILL'), 10_000);
      const status = await exited;
      clearTimeout(timer);
      assert.equal(status, 130);
    } finally {
      holder.kill();
    }
  });

  it('a FIFO whose reader goes away: the other output is finished, exit 0, the summary names the FIFO', async () => {
    const fifo = join(dir, 'early.fifo');
    spawnSync('mkfifo', [fifo]);
    const big = join(dir, 'early-in.pcap');
    writeFileSync(big, buildPcap(Array.from({ length: 3000 }, (_, i) => ({ sec: 1_700_000_000 + i, frac: 0, data: bytesOf(1400, i) }))));
    const head = spawn('sh', ['-c', 'head -c 100000 "$0" > /dev/null', fifo], { stdio: 'ignore' });
    const headDone = new Promise((res) => head.on('exit', res));
    const oob = join(dir, 'early.jsonl');
    const r = spawn(process.execPath, [BIN, 'rx', '--sa', sa, big, '-w', fifo, '--oob', oob], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    r.stderr.on('data', (b: Buffer) => { err += b; });
    const status = await new Promise<number | null>((res) => r.on('exit', res));
    await headDone;
    assert.equal(status, 0, err);
    assert.equal(readFileSync(oob, 'utf8').trim().split('\n').length, 3000, 'every frame has its OOB line');
    assert.match(err, /early\.fifo \(the capture\) closed by its reader: the output written there stopped early/);
  });

  it('live --oob onto a FIFO: the reader gets every line; with a reader that stops reading, exit still works', async () => {
    const fifo = join(dir, 'live.fifo');
    spawnSync('mkfifo', [fifo]);
    const got = join(dir, 'live-got');
    const fd = openSync(got, 'w');
    const cat = spawn('cat', [fifo], { stdio: ['ignore', fd, 'inherit'] });
    const ended = new Promise<number | null>((res) => cat.on('exit', res));
    const oob = await LiveOob.open(fifo);
    for (let i = 0; i < 1000; i++) oob.write(`{"frame":${i + 1}}\n`);
    await oob.close();
    const timer = setTimeout(() => cat.kill(), 10_000);
    assert.equal(await ended, 0);
    clearTimeout(timer);
    closeSync(fd);
    assert.equal(readFileSync(got, 'utf8').split('\n').length, 1001);
    assert.ok(lstatSync(fifo).isFIFO());

    // A reader that never reads: 4 MB of lines fill the pipe. A write waiting in libuv's pool
    // would keep process.exit() from returning; written from the event loop, exit is at once.
    const holder = spawn('sh', ['-c', 'exec sleep 60 < "$0"', fifo], { stdio: 'ignore' });
    const script = join(dir, 'live-exit.mjs');
    writeFileSync(script, `import { LiveOob } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'cli', 'live.js'))};
const o = await LiveOob.open(${JSON.stringify(fifo)});
const line = 'x'.repeat(1023) + '\\n';
for (let i = 0; i < 4096; i++) o.write(line);
setTimeout(() => process.exit(3), 500);
`);
    try {
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => { err += b; });
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const status = await new Promise<number | null>((res) => child.on('exit', res));
      clearTimeout(t);
      assert.equal(status, 3, `exited by itself: ${err}`);
    } finally {
      holder.kill();
    }
  });

  it('a symbolic link to a file: the file gets the output, the link stays a link', () => {
    const real = join(dir, 'real.pcapng');
    writeFileSync(real, 'old contents');
    const link = join(dir, 'link.pcapng');
    symlinkSync(real, link);
    const r = run(['rx', '--sa', sa, input, '-w', link, '--oob', join(dir, 'link.jsonl'), '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(lstatSync(link).isSymbolicLink(), 'still a link');
    assert.equal(readlinkSync(link), real);
    assert.deepEqual(readFileSync(real), refCapture);
  });

  it('-w and --oob naming one file, or --oob naming the input: refused (exit 2), nothing written', () => {
    const both = join(dir, 'both.out');
    let r = run(['rx', '--sa', sa, input, '-w', both, '--oob', both, '--quiet']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /both\.out: --oob names the same file as the capture output/);
    assert.equal(existsSync(both), false);
    const before = readFileSync(input);
    r = run(['rx', '--sa', sa, input, '-w', join(dir, 'x.pcapng'), '--oob', input, '--quiet']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /in\.pcap: refusing to overwrite the input capture with the OOB records/);
    assert.deepEqual(readFileSync(input), before);
    assert.equal(existsSync(join(dir, 'x.pcapng')), false);
    // the default output name (beside the input) is compared too
    r = run(['rx', '--sa', sa, input, '--oob', join(dir, 'in.rx.pcapng'), '--quiet']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--oob names the same file as the capture output/);
  });

  it('a directory as -w: a clear error naming it, exit 1, no stack trace', () => {
    const d = join(dir, 'adir');
    mkdirSync(d);
    const r = run(['rx', '--sa', sa, input, '-w', d, '--quiet']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `ipsecov2: ${d}: is a directory\n`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.ok(statSync(d).isDirectory());
  });

  it('sa import -w onto a device writes through it and leaves it a device', { skip: isRoot ? false : 'mknod needs root' }, () => {
    const dev = nullNode('sa-null');
    const r = run(['sa', 'import', '--from', 'xfrm', join(ROOT, 'fixtures', 'sa', 'import', 'xfrm-state.txt'), '-w', dev]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(lstatSync(dev).isCharacterDevice());
    assert.equal(readdirSync(dir).filter((f) => f.startsWith('sa-null.')).length, 0, 'no temporary file left');
  });
});
