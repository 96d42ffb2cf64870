/**
 * Hardening (issue: hostile input, faults and secrets):
 *  - secrets: no fixture key ever appears in any output file, OOB record, summary, warning or
 *    error message of the commands run here (sa export is the one output made of keys);
 *  - worker faults: a crashing crypto worker is replaced and its batch retried (output identical
 *    to an inline run); a batch that fails twice gives CRYPTO_GENERIC_ERROR and the run goes on;
 *  - interrupts: SIGINT closes the outputs as valid captures, renamed into place, exit 130;
 *  - disk full: one clear line, exit 1, no partial file left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, chmodSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSaFile } from '../src/sa/load.js';
import { captureBytes, corpus, FUZZ_SA_YAML } from './fuzz/lib.js';
import { openCapture } from '../src/capture/reader.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ipsecov2');
const FIX = join(ROOT, 'fixtures');

interface Out { status: number | null; stdout: Buffer; stderr: string }

function run(args: string[], env: NodeJS.ProcessEnv = {}, input?: Buffer): Out {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, input, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'ipsecov2-hard-'));
}

/** Every key (cipher, salt included, and integrity) of every loadable fixture SA file. */
function fixtureKeys(): { file: string; keys: Buffer[] }[] {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ya?ml|json)$/.test(e.name) && !/manifest/.test(e.name)) files.push(p);
    }
  };
  walk(FIX);
  const out: { file: string; keys: Buffer[] }[] = [];
  for (const f of files) {
    let keys: Buffer[] = [];
    try {
      const doc = loadSaFile(f, { env: { ...process.env, IPSECOV2_TEST_KEY: '00112233445566778899aabbccddeeff' } });
      for (const b of [...doc.bundles, ...doc.events.flatMap((e) => (e.kind === 'add' ? [e.bundle] : []))]) {
        if (b.esp) keys.push(b.esp.encryptionKey, b.esp.integrityKey);
        if (b.ah) keys.push(b.ah.integrityKey);
      }
    } catch {
      // Invalid fixtures: take every long hex run from the text as a key.
      const text = readFileSync(f, 'utf8');
      keys = [...text.matchAll(/(?:0x)?([0-9a-fA-F][0-9a-fA-F :]{30,}[0-9a-fA-F])/g)].map((m) => Buffer.from(m[1]!.replace(/[ :]/g, ''), 'hex')).filter((k) => k.length >= 8);
    }
    keys = keys.filter((k) => k.length >= 8);
    if (keys.length) out.push({ file: f, keys });
  }
  return out;
}

/** A window of a patterned key (00 01 02 …, 6e 6f 01 02 …): too few distinct byte steps. */
function isProgression(w: Buffer): boolean {
  const steps = new Set<number>();
  for (let i = 1; i < w.length; i++) steps.add((w[i]! - w[i - 1]! + 256) & 0xff);
  return steps.size < 4;
}

/**
 * Key windows (8 bytes, as hex in any common spelling, or raw) found in `haystack` but not in
 * `baseline` (the input capture: patterned fixture keys like 40 41 42 … can occur in payloads).
 */
function leaks(haystack: Buffer, keys: Buffer[], baseline: Buffer | null = null): string[] {
  const text = haystack.toString('latin1');
  const lower = text.toLowerCase();
  const found: string[] = [];
  for (const k of keys) {
    const hex = k.toString('hex');
    // Any 8-byte window of the key, as hex (any case, with or without separators) or raw bytes.
    for (let i = 0; i + 8 <= k.length; i += 4) {
      const w = k.subarray(i, i + 8);
      // Patterned fixture keys (00 01 02 …, 40 41 42 …) also occur as patterned plaintext
      // and padding: only high-entropy windows can tell a leak from a payload.
      if (isProgression(w)) continue;
      const h = w.toString('hex');
      const spaced = h.match(/../g)!.join(':');
      const asText = lower.includes(h) || lower.includes(spaced) || lower.includes(h.match(/../g)!.join(' '));
      const asBytes = haystack.includes(w) && !(baseline && baseline.includes(w));
      const inBaselineText = baseline !== null && baseline.toString('latin1').toLowerCase().includes(h);
      if ((asText && !inBaselineText) || asBytes) {
        found.push(`${hex.slice(0, 4)}…(${k.length} bytes)`);
        break;
      }
    }
  }
  return found;
}

test('secrets: no key of any fixture SA file appears in any output, summary or error', async () => {
  const all = fixtureKeys();
  assert.ok(all.length >= 10, `found keys in ${all.length} fixture files`);
  const keys = all.flatMap((x) => x.keys);
  const d = tmp();
  const outputs: { what: string; data: Buffer; baseline?: Buffer }[] = [];
  const record = (what: string, r: Out): void => {
    outputs.push({ what: `${what} (stdout)`, data: r.stdout });
    outputs.push({ what: `${what} (stderr)`, data: Buffer.from(r.stderr) });
  };
  // Every SA file: sa check, caps, rx on its captures (pcapng + OOB + summary, text and JSON).
  const rxDir = join(FIX, 'rx');
  const caps = existsSync(rxDir) ? readdirSync(rxDir).filter((f) => f.endsWith('.pcap')) : [];
  for (const { file } of all) {
    record(`sa check ${basename(file)}`, run(['sa', 'check', file]));
    record(`caps --sa ${basename(file)}`, run(['caps', '--sa', file, '--json']));
    const ex = run(['sa', 'export', '--to', 'wireshark', file, '-w', join(d, 'exported')]);
    outputs.push({ what: `sa export ${basename(file)} (stderr)`, data: Buffer.from(ex.stderr) });
  }
  for (const sa of existsSync(rxDir) ? readdirSync(rxDir).filter((f) => f.endsWith('.sa.yaml')) : []) {
    const group = sa.replace(/\.sa\.yaml$/, '');
    for (const c of caps.filter((f) => f.startsWith(group)).slice(0, 6)) {
      for (const extra of [[], ['--json'], ['--in-place']]) {
        const out = join(d, 'o.pcapng');
        const oob = join(d, 'o.jsonl');
        const r = run(['rx', '--sa', join(rxDir, sa), join(rxDir, c), '-w', out, '--oob', oob, '--workers', '0', ...extra]);
        record(`rx ${c} ${extra.join(' ')}`, r);
        if (existsSync(out)) outputs.push({ what: `rx ${c} output`, data: readFileSync(out), baseline: readFileSync(join(rxDir, c)) });
        if (existsSync(oob)) outputs.push({ what: `rx ${c} OOB`, data: readFileSync(oob) });
      }
    }
  }
  // tx: the protected capture carries ciphertext, never keys.
  const sa = join(d, 'tx.yaml');
  writeFileSync(sa, FUZZ_SA_YAML.replace(/    mode: transport\n    esp: \{ spi: 0x0000c002/, '    direction: outbound\n    mode: transport\n    esp: { spi: 0x0000c002'));
  chmodSync(sa, 0o600);
  writeFileSync(join(d, 'in.pcap'), await captureBytes(corpus(), 'pcap'));
  const tx = run(['tx', '--sa', sa, join(d, 'in.pcap'), '-w', join(d, 'tx.pcapng'), '--oob', join(d, 'tx.jsonl'), '--json']);
  record('tx', tx);
  outputs.push({ what: 'tx output', data: readFileSync(join(d, 'tx.pcapng')), baseline: readFileSync(join(d, 'in.pcap')) });
  outputs.push({ what: 'tx OOB', data: readFileSync(join(d, 'tx.jsonl')) });
  // Errors about keys: wrong length, bad hex, missing env key, group-readable file.
  const bad = join(d, 'bad.yaml');
  writeFileSync(bad, 'version: 1\nsas:\n  - name: x\n    esp: { spi: 0x1000, encryption: aes-gcm-128, encryptionKey: "0x8f3a91c2d47be5069a1c33f0e2b87d45" }\n  - name: y\n    esp: { spi: 0x1001, encryption: aes-cbc-128, encryptionKey: "8f3a91c2d47be5069a1c33f0e2b87d45zz" }\n');
  chmodSync(bad, 0o644);
  record('sa check bad', run(['sa', 'check', bad]));
  record('rx bad', run(['rx', '--sa', bad, join(d, 'in.pcap'), '-w', join(d, 'x.pcapng')]));
  keys.push(Buffer.from('8f3a91c2d47be5069a1c33f0e2b87d45', 'hex'));
  const usable = keys.filter((k) => { for (let i = 0; i + 8 <= k.length; i += 4) if (!isProgression(k.subarray(i, i + 8))) return true; return false; });
  assert.ok(usable.length >= 10, `${usable.length} keys distinctive enough to search for`);
  const problems: string[] = [];
  for (const o of outputs) {
    const l = leaks(o.data, keys, o.baseline ?? null);
    if (l.length) problems.push(`${o.what}: ${l.join(', ')}`);
  }
  assert.deepEqual(problems, [], 'key material found in outputs');
  assert.ok(outputs.length > 50, `${outputs.length} outputs checked`);
});

async function smallCapture(d: string, copies = 40): Promise<string> {
  const frames: Buffer[] = [];
  for (let i = 0; i < copies; i++) frames.push(...corpus());
  const p = join(d, 'in.pcap');
  writeFileSync(p, await captureBytes(frames, 'pcap'));
  const sa = join(d, 'sas.yaml');
  writeFileSync(sa, FUZZ_SA_YAML);
  chmodSync(sa, 0o600);
  return p;
}

test('worker faults: a dying worker is replaced and its batch retried; output identical to inline', async () => {
  const d = tmp();
  const input = await smallCapture(d);
  const sa = join(d, 'sas.yaml');
  const a = run(['rx', '--sa', sa, input, '-w', join(d, 'a.pcapng'), '--oob', join(d, 'a.jsonl'), '--workers', '0', '-q']);
  assert.equal(a.status, 0, a.stderr);
  const b = run(['rx', '--sa', sa, input, '-w', join(d, 'b.pcapng'), '--oob', join(d, 'b.jsonl'), '--workers', '2', '--json'], { IPSECOV2_FAULT: 'crash:1', IPSECOV2_POOL_EVERY_BATCH: '1' });
  assert.equal(b.status, 0, b.stderr);
  assert.deepEqual(readFileSync(join(d, 'b.jsonl')), readFileSync(join(d, 'a.jsonl')));
  assert.deepEqual(readFileSync(join(d, 'b.pcapng')), readFileSync(join(d, 'a.pcapng')));
  const summary = JSON.parse(b.stderr.trim().split('\n').pop()!) as { workerFaults: number; framesIn: number };
  assert.equal(summary.workerFaults, 0, 'the retry succeeded');
});

test('worker faults: a batch that fails twice → CRYPTO_GENERIC_ERROR with a detail, run goes on, summary says so', async () => {
  const d = tmp();
  const input = await smallCapture(d);
  const r = run(['rx', '--sa', join(d, 'sas.yaml'), input, '-w', join(d, 'c.pcapng'), '--oob', join(d, 'c.jsonl'), '--workers', '2', '--json'], { IPSECOV2_FAULT: 'crash-all:1', IPSECOV2_POOL_EVERY_BATCH: '1' });
  assert.equal(r.status, 0, r.stderr);
  const lines = readFileSync(join(d, 'c.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { cryptoDone: number; cryptoStatus: string; detail: string | null });
  assert.equal(lines.length, corpus().length * 40, 'every frame accounted for');
  const generic = lines.filter((l) => l.cryptoStatus === 'CRYPTO_GENERIC_ERROR');
  assert.ok(generic.length > 0);
  for (const g of generic) assert.match(g.detail ?? '', /crypto worker failed twice/);
  const summary = JSON.parse(r.stderr.trim().split('\n').pop()!) as { workerFaults: number };
  assert.ok(summary.workerFaults > 0);
});

test('SIGINT: outputs closed as valid captures and renamed into place, exit 130', async () => {
  const d = tmp();
  const input = readFileSync(await smallCapture(d, 200));
  const out = join(d, 'o.pcapng');
  const oob = join(d, 'o.jsonl');
  const child = spawn(process.execPath, [BIN, 'rx', '--sa', join(d, 'sas.yaml'), '-', '-w', out, '--oob', oob, '--workers', '0'], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  // Half the capture, then wait: the tool is mid-run when the signal arrives.
  child.stdin.write(input.subarray(0, Math.floor(input.length / 2)));
  await new Promise((r) => setTimeout(r, 1500));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  child.stdin.destroy();
  assert.equal(code, 130, stderr);
  assert.match(stderr, /interrupted: the outputs hold the first \d+ frames/);
  assert.ok(existsSync(out), 'capture renamed into place');
  const reader = await openCapture(out);
  let n = 0;
  for (let b = await reader.nextBatch(1000); b; b = await reader.nextBatch(1000)) n += b.length;
  assert.equal(reader.truncated, false, 'a valid capture');
  await reader.close();
  assert.ok(n > 0);
  const lines = readFileSync(oob, 'utf8').trim().split('\n');
  assert.equal(lines.length, n, 'one OOB line per frame written');
  assert.equal(readdirSync(d).filter((f) => f.endsWith('.tmp')).length, 0, 'no temporary files left');
});

test('disk full: one clear line, exit 1, no partial file left (written by the addon thread or by libuv)', async (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root to mount a small tmpfs'); return; }
  const d = tmp();
  const input = await smallCapture(d, 100);
  const full = join(d, 'full');
  mkdirSync(full);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full]);
  if (m.status !== 0) { t.skip(`cannot mount tmpfs: ${m.stderr.toString().trim()}`); return; }
  try {
    for (const noThread of ['', '1']) {
      const r = run(['rx', '--sa', join(d, 'sas.yaml'), input, '-w', join(full, 'o.pcapng'), '--workers', '0'], { IPSECOV2_NO_WRITE_THREAD: noThread });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /: write failed: ENOSPC: no space left on device, write\n$/);
      assert.deepEqual(readdirSync(full), [], 'partial output removed');
      // the OOB output: the same files, named by the target
      const oob = join(full, 'o.jsonl');
      const o = run(['rx', '--sa', join(d, 'sas.yaml'), input, '-w', join(d, 'o.pcapng'), '--oob', oob, '--workers', '0'], { IPSECOV2_NO_WRITE_THREAD: noThread });
      assert.equal(o.status, 1, o.stderr);
      assert.equal(o.stderr, `ipsecov2: ${oob}: no space left on device\n`);
      assert.deepEqual(readdirSync(full), [], 'partial OOB output removed');
    }
  } finally {
    spawnSync('umount', [full]);
  }
});
