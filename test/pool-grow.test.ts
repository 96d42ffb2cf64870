/**
 * --workers N is a maximum (pool.ts): the pool starts one worker and adds one only when the
 * pipeline keeps waiting for crypto results. With a heavy transform (3DES + HMAC-SHA-512 on
 * 1400-byte payloads, ~10x the main thread's work per frame) it must grow to 2, and the output
 * must be byte-identical to the inline run although the worker count changed mid-run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureBytes } from './fuzz/lib.js';
import { ether, ipPacket, Prng } from './tx-helpers.js';
import { writeSaFile } from './helpers/sa-yaml.js';
import { nativeAvailable } from '../src/crypto/native.js';

const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'ipsecov2');


function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  return { status: r.status, stderr: r.stderr };
}

test('pool: a heavy transform makes the pool grow to --workers 2; output identical to inline', async () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-grow-'));
  const sa = writeSaFile(join(d, 'sa.yaml'), [
    { name: 'heavy', mode: 'tunnel', dst: '10.1.1.0/24', tunnel: { src: '192.0.2.2', dst: '192.0.2.1' }, esp: `spi: 0x0000c003, encryption: 3des-cbc, encryptionKey: "101112131415161718191a1b1c1d1e1f2021222324252627", integrity: hmac-sha512-256, integrityKey: "${'2a'.repeat(64)}"` },
  ]);
  // 16000 Ethernet/IPv4/UDP frames with 1400-byte payloads to the SA's selector
  const r = new Prng(7);
  const dst = Buffer.from([10, 1, 1, 7]);
  const plain = Array.from({ length: 16000 }, () => ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 1400, dst })));
  writeFileSync(join(d, 'plain.pcap'), await captureBytes(plain, 'pcap'));
  const tx = run(['tx', '--sa', sa, join(d, 'plain.pcap'), '-w', join(d, 'esp.pcap'), '--iv-seed', '0102', '--quiet', '--workers', '0']);
  assert.equal(tx.status, 0, tx.stderr);
  const outs: Buffer[][] = [];
  // inline; the addon's crypto threads (the default where it is built); worker_threads
  for (const [w, js] of [['0', ''], ['2', ''], ['2', '1']] as const) {
    const r = run(['rx', '--sa', sa, '--any-direction', join(d, 'esp.pcap'), '-w', join(d, `o${w}${js}.pcapng`), '--oob', join(d, `o${w}${js}.jsonl`), '--workers', w, '--json'], { IPSECOV2_JS_WORKERS: js });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stderr.trim().split('\n').pop()!) as { workersStarted: number; workerKind: string; outcomes: Record<string, number> };
    assert.equal(j.workerKind, w === '0' ? 'inline' : js ? 'worker_threads' : nativeAvailable() ? 'native' : 'worker_threads');
    assert.deepEqual(j.outcomes, { CRYPTO_SUCCESS: 16000 });
    assert.equal(j.workersStarted, Number(w), `workers started at --workers ${w}${js ? ' (worker_threads)' : ''}`);
    outs.push([readFileSync(join(d, `o${w}${js}.pcapng`)), readFileSync(join(d, `o${w}${js}.jsonl`))]);
  }
  for (const k of [1, 2]) {
    assert.ok(outs[0]![0]!.equals(outs[k]![0]!), `pcapng differs (${k})`);
    assert.ok(outs[0]![1]!.equals(outs[k]![1]!), `OOB differs (${k})`);
  }
});
