/**
 * A batch lost with a crypto worker is retried from job data rebuilt from the frames (pool.ts,
 * RxEngine.rebuildJobs), not from a backup copy: the retried output must be byte-identical to
 * the inline run for every job layout (ESP, AH with zeroed mutable fields, AH+ESP, NAT-T, ESN,
 * transport-over-tunnel, IPv4 and IPv6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ipsecov2');
const RX = join(ROOT, 'fixtures', 'rx');

const CASES: [string, string][] = [
  ['ah.sa.yaml', 'ah-hmac-sha1-96-transport-v4'],
  ['ah.sa.yaml', 'ah-hmac-sha256-128-transport-v6'],
  ['ah.sa.yaml', 'ah-hmac-md5-96-tunnel-v6'],
  ['ahesp.sa.yaml', 'ahesp-aes-cbc-128-hmac-sha1-96-hmac-sha256-128-tunnel-v4'],
  ['ahesp.sa.yaml', 'ahesp-aes-gcm-128-icv16-hmac-sha1-96-transport-v6'],
  ['esp.sa.yaml', 'esp-aes-cbc-128-hmac-sha1-96-transport-v4'],
  ['natt.sa.yaml', 'natt-aes-gcm-128-icv16-transport-v4'],
  ['esn.sa.yaml', 'esn-ah-sha1-h3'],
  ['esn.sa.yaml', 'esn-gcm128-h5'],
  ['tot.sa.yaml', 'transport-over-tunnel'],
  ['replay.sa.yaml', 'replay-ah'],
  ['errors.sa.yaml', 'truncated'],
];

function rx(sa: string, input: string, out: string, workers: number, fault?: string): { status: number | null; stderr: string } {
  // the pool takes the capture's only batch (by default it would run inline)
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', IPSECOV2_POOL_EVERY_BATCH: '1' };
  if (fault) env.IPSECOV2_FAULT = fault;
  else delete env.IPSECOV2_FAULT;
  const r = spawnSync(process.execPath, [BIN, 'rx', '--sa', sa, input, '-w', `${out}.pcapng`, '--oob', `${out}.jsonl`, '--workers', String(workers), '--json'], { env });
  return { status: r.status, stderr: r.stderr.toString() };
}

for (const [saFile, name] of CASES) {
  test(`worker retry rebuilds the jobs: ${name} identical to --workers 0`, () => {
    const d = mkdtempSync(join(tmpdir(), 'ipsecov2-perf-retry-'));
    const sa = join(RX, saFile);
    const input = join(RX, `${name}.pcap`);
    const a = rx(sa, input, join(d, 'a'), 0);
    assert.equal(a.status, 0, a.stderr);
    // crash:1 kills worker 0 on its first batch (the whole capture): everything is retried.
    const b = rx(sa, input, join(d, 'b'), 2, 'crash:1');
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual(readFileSync(join(d, 'b.jsonl')), readFileSync(join(d, 'a.jsonl')));
    assert.deepEqual(readFileSync(join(d, 'b.pcapng')), readFileSync(join(d, 'a.pcapng')));
    const summary = JSON.parse(b.stderr.trim().split('\n').pop()!) as { workerFaults: number };
    assert.equal(summary.workerFaults, 0);
  });
}
