/**
 * The command line as a user meets it: exit codes, help, clear errors naming the file, no stack
 * traces for user mistakes, truncated input, pipes (EPIPE), outputs never left half-written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureBytes, corpus, FUZZ_SA_YAML } from './fuzz/lib.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ipsecov2');

function run(args: string[], opts: { input?: Buffer | string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { input: opts.input, cwd: opts.cwd, env: { ...process.env, NO_COLOR: '1', ...opts.env }, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function workdir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-cli-'));
  const sa = join(d, 'sas.yaml');
  writeFileSync(sa, FUZZ_SA_YAML);
  chmodSync(sa, 0o600);
  return d;
}

async function capture(d: string, name = 'in.pcap', format: 'pcap' | 'pcapng' = 'pcap'): Promise<string> {
  const p = join(d, name);
  writeFileSync(p, await captureBytes(corpus(), format));
  return p;
}

test('cli: --help and --version exit 0; subcommand help has an example', () => {
  const h = run(['--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout.toString(), /rx/);
  const v = run(['--version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout.toString(), /ipsecov2 \d+\.\d+\.\d+ \(.*\)/);
  for (const c of ['rx', 'tx', 'caps', 'live']) {
    const r = run([c, '--help']);
    assert.equal(r.status, 0, c);
    assert.match(r.stdout.toString(), /Example/, c);
  }
});

test('cli: usage errors exit 2 without a stack trace', () => {
  const r = run(['rx', '--bogus']);
  assert.equal(r.status, 2);
  assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  const w = run(['rx', '--sa', 'x.yaml', '--workers', 'many', 'in.pcap']);
  assert.equal(w.status, 2);
  assert.match(w.stderr, /--workers: expected a whole number, got 'many'/);
});

test('cli: rx with an SA file that matches nothing writes every frame byte-identical, one OOB line each', async () => {
  const d = workdir();
  const input = await capture(d);
  const sa = join(d, 'none.yaml');
  writeFileSync(sa, 'version: 1\nsas:\n  - name: other\n    mode: transport\n    esp: { spi: 0x999, encryption: aes-gcm-128, encryptionKey: "000102030405060708090a0b0c0d0e0f11223344" }\n');
  chmodSync(sa, 0o600);
  const r = run(['rx', '--sa', sa, input, '-w', join(d, 'out.pcap'), '--oob', join(d, 'out.jsonl'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const a = readFileSync(input);
  const b = readFileSync(join(d, 'out.pcap'));
  assert.deepEqual(b.subarray(24), a.subarray(24), 'records byte-identical');
  const lines = readFileSync(join(d, 'out.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { frame: number; cryptoDone: number; spi: string | null });
  assert.equal(lines.length, corpus().length);
  lines.forEach((l, i) => { assert.equal(l.frame, i + 1); assert.equal(l.cryptoDone, 0); });
  assert.ok(lines.some((l) => l.spi === '0x0000c001'), 'SPI filled for ESP frames');
});

test('cli: default output name beside the input; refuses to overwrite the input', async () => {
  const d = workdir();
  const input = await capture(d, 'trace.pcapng', 'pcapng');
  const r = run(['rx', '--sa', join(d, 'sas.yaml'), input, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(d, 'trace.rx.pcapng')));
  const s = run(['rx', '--sa', join(d, 'sas.yaml'), input, '-w', input]);
  assert.equal(s.status, 2);
  assert.match(s.stderr, /refusing to overwrite the input/);
});

test('cli: not a capture → one line naming the file, exit 1, no output left behind', () => {
  const d = workdir();
  const bad = join(d, 'notes.txt');
  writeFileSync(bad, 'hello world, this is not a capture\n');
  const r = run(['rx', '--sa', join(d, 'sas.yaml'), bad, '-w', join(d, 'out.pcapng'), '--oob', join(d, 'o.jsonl')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /notes\.txt/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.deepEqual(readdirSync(d).sort(), ['notes.txt', 'sas.yaml']);
});

test('cli: a capture cut mid-record → every complete frame written, warning with the byte offset, exit 1', async () => {
  const d = workdir();
  const full = readFileSync(await capture(d));
  const cut = join(d, 'cut.pcap');
  writeFileSync(cut, full.subarray(0, full.length - 10));
  const r = run(['rx', '--sa', join(d, 'sas.yaml'), cut, '-w', join(d, 'out.pcap'), '--oob', join(d, 'o.jsonl'), '--json']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /offset/);
  const lines = readFileSync(join(d, 'o.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, corpus().length - 1);
});

test('cli: stdin to stdout in a pipeline, and EPIPE is quiet', async () => {
  const d = workdir();
  const input = readFileSync(await capture(d));
  const r = run(['rx', '--sa', join(d, 'sas.yaml'), '-', '-w', '-', '--quiet'], { input });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.readUInt32LE(0), 0x0a0d0d0a, 'pcapng section header on stdout');
  // | head -c 100: the reader closes early; no stack trace.
  const sh = spawnSync('sh', ['-c', `node ${BIN} rx --sa ${join(d, 'sas.yaml')} - -w - --quiet < ${join(d, 'in.pcap')} | head -c 100 > /dev/null; echo "rc=\${PIPESTATUS:-x}"`], { encoding: 'utf8' });
  assert.doesNotMatch(sh.stderr, /Error|at /, sh.stderr);
});

test('cli: a missing SA file or input names the file', async () => {
  const d = workdir();
  const input = await capture(d);
  const r = run(['rx', '--sa', join(d, 'missing.yaml'), input]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing\.yaml/);
  const s = run(['rx', '--sa', join(d, 'sas.yaml'), join(d, 'nope.pcap')]);
  assert.equal(s.status, 1);
  assert.match(s.stderr, /nope\.pcap: no such file/);
});

test('cli: an unwritable output directory is one clear line, exit 1', async () => {
  const d = workdir();
  const input = await capture(d);
  const r = run(['rx', '--sa', join(d, 'sas.yaml'), input, '-w', join(d, 'no', 'such', 'dir', 'out.pcapng')]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /no such file or directory|ENOENT/);
});

test('cli: demo runs on the bundled example', () => {
  const d = workdir();
  if (!existsSync(join(ROOT, 'fixtures', 'demo', 'demo.pcapng'))) return;
  const r = run(['demo', '-w', join(d, 'demo.pcapng'), '--oob', join(d, 'demo.jsonl')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /CRYPTO_SUCCESS/);
});
