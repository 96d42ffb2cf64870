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
import { ether, ipPacket, Prng } from './tx-helpers.js';
import { writeSaFile } from './helpers/sa-yaml.js';

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

/** A GCM tunnel SA (both directions with --any-direction) and an ESP capture of `n` 1400-byte frames made by tx. */
async function espCapture(d: string, n: number): Promise<{ sa: string; esp: string }> {
  const sa = writeSaFile(join(d, 'gcm.yaml'), [
    { name: 'gcm', mode: 'tunnel', dst: '10.1.1.0/24', tunnel: { src: '192.0.2.2', dst: '192.0.2.1' }, esp: `spi: 0x0000c001, encryption: aes-gcm-128, encryptionKey: "${'5a'.repeat(20)}"` },
  ]);
  const r = new Prng(3);
  const dst = Buffer.from([10, 1, 1, 7]);
  writeFileSync(join(d, 'plain.pcap'), await captureBytes(Array.from({ length: n }, () => ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 1400, dst }))), 'pcap'));
  const esp = join(d, 'esp.pcap');
  const tx = run(['tx', '--sa', sa, join(d, 'plain.pcap'), '-w', esp, '--iv-seed', '01', '--quiet']);
  assert.equal(tx.status, 0, tx.stderr);
  return { sa, esp };
}

function bash(cmd: string): { rc: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `${cmd}; echo "rc=\${PIPESTATUS[0]}"`], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { rc: /rc=(\d+)/.exec(r.stdout)?.[1] ?? '?', stderr: r.stderr };
}

test('cli: stdout closed by its reader while the other output is a file: the file is finished, the summary says so', async () => {
  const d = workdir();
  const { sa, esp } = await espCapture(d, 20000); // ~30 MB: far more than a pipe holds
  // capture to a closed stdout, OOB to a file
  const a = bash(`node ${BIN} rx --sa ${sa} --any-direction ${esp} -w - --oob ${join(d, 'a.jsonl')} | head -c 100 > /dev/null`);
  assert.equal(a.rc, '0', a.stderr);
  assert.match(a.stderr, /stdout \(the capture\) closed by its reader: the output written there stopped early/);
  assert.equal(readFileSync(join(d, 'a.jsonl'), 'utf8').trim().split('\n').length, 20000);
  // OOB to a closed stdout, capture to a file
  const b = bash(`node ${BIN} rx --sa ${sa} --any-direction ${esp} -w ${join(d, 'b.pcapng')} --oob - | head -n 1 > /dev/null`);
  assert.equal(b.rc, '0', b.stderr);
  assert.match(b.stderr, /stdout \(the OOB lines\) closed by its reader: the output written there stopped early/);
  const j = run(['rx', '--sa', sa, join(d, 'b.pcapng'), '-w', join(d, 'c.pcapng'), '--json', '--any-direction']);
  assert.equal(JSON.parse(j.stderr.trim().split('\n').pop()!).framesIn, 20000);
  // only stdout: the run ends at once, quietly
  const c = bash(`node ${BIN} rx --sa ${sa} --any-direction ${esp} -w - --quiet | head -c 100 > /dev/null`);
  assert.equal(c.rc, '0', c.stderr);
  assert.doesNotMatch(c.stderr, /Error|at /);
  assert.deepEqual(readdirSync(d).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
});

test('cli: outputs not finished when the process exits are removed (no temporary file left)', () => {
  const d = workdir();
  const script = `
    import { createCaptureWriter } from ${JSON.stringify(join(ROOT, 'dist/src/capture/writer.js'))};
    import { OutputFile } from ${JSON.stringify(join(ROOT, 'dist/src/pipeline/output.js'))};
    const w = await createCaptureWriter(${JSON.stringify(join(d, 'x.pcapng'))}, { format: 'pcapng' });
    const id = w.addInterface({ linkType: 1, snapLen: 65535, name: null, description: null, tsResol: 6, tsOffset: 0 });
    for (let i = 0; i < 2000; i++) w.writeFrame(id, 0, i, Buffer.alloc(1400, 7), 1400, null);
    await w.flush();
    const o = await OutputFile.open(${JSON.stringify(join(d, 'x.jsonl'))});
    o.write('{}\\n');
    process.exit(3); // as a second Ctrl-C or a closed stdout does
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  assert.deepEqual(readdirSync(d).filter((f) => f.startsWith('.x.')), [], 'temporary files left');
  assert.ok(!existsSync(join(d, 'x.pcapng')) && !existsSync(join(d, 'x.jsonl')));
});

test('OOB output: after each flush at most two buffer writes are in flight, however long the main thread stays busy', async () => {
  const { OutputFile } = await import('../src/pipeline/output.js');
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-oobfile-'));
  const o = await OutputFile.open(join(d, 'x.jsonl'));
  const line = `${'x'.repeat(199)}\n`;
  let max = 0;
  for (let b = 0; b < 40; b++) {
    // a "batch": ~1.5 MiB of lines written without yielding to the event loop
    for (let i = 0; i < 8000; i++) {
      const at = o.reserve(line.length);
      o.commit(at + o.buffer.write(line, at, 'latin1'));
    }
    await o.flush();
    max = Math.max(max, o.inFlight);
  }
  await o.close();
  assert.ok(max <= 2, `${max} writes in flight after a flush`);
  assert.equal(readFileSync(join(d, 'x.jsonl')).length, 40 * 8000 * line.length);
});

test('cli: a capture cut inside a record: one warning naming the file and the byte offset once', async () => {
  const d = workdir();
  const full = readFileSync(await capture(d));
  const cut = join(d, 'cut.pcap');
  writeFileSync(cut, full.subarray(0, 24 + 16 + 10)); // header, a record header, 10 bytes of its frame
  const r = run(['rx', '--sa', join(d, 'sas.yaml'), cut, '-w', join(d, 'cut.pcapng')]);
  assert.equal(r.status, 1, r.stderr);
  const w = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  assert.equal(w.length, 1, r.stderr);
  assert.match(w[0]!, /^warning: .*cut\.pcap: truncated record at byte offset 24 \(26 of \d+ bytes present\)$/);
  assert.equal(w[0]!.split('byte offset').length, 2, 'the offset once');
});
