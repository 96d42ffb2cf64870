/**
 * `--esn pushed`: the strict NDIS way (spec §9 item 3). Only the SA file's sequence.high and its
 * `update` events (UPDATE_SA) give the NIC the ESN high bits; without the push, packets past the
 * 2^32 boundary fail, with the push at the right frame they verify. Capture: Scapy's
 * esn-gcm128-h5 (frames 1–3 and 6 in subspace 5, frames 4–5 in subspace 6, 7–8 tampered).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseSaText } from '../src/sa/load.js';
import { runCapture } from '../src/pipeline/run.js';
import type { OobRecord } from '../src/offload/oob.js';

const RX = fileURLToPath(new URL('../../fixtures/rx/', import.meta.url));

async function statuses(events: string, esn: 'infer' | 'pushed'): Promise<string[]> {
  const text = readFileSync(join(RX, 'esn.sa.yaml'), 'utf8') + events;
  const sa = parseSaText(text, 'esn.sa.yaml');
  const out: string[] = [];
  await runCapture({
    path: 'rx', input: join(RX, 'esn-gcm128-h5.pcap'), output: null, oob: null, format: 'pcapng', sa, inPlace: false,
    dropFailed: false, anyDirection: false, esn, replayWindow: null, workers: 0, ivSeed: null, mtu: 1500, progress: false,
    onRecord: (r: OobRecord) => { out.push(`${r.seqHigh}:${r.cryptoStatus}`); },
  });
  return out;
}

test('ESN inferred (default): every genuine frame verifies across the 2^32 boundary', async () => {
  assert.deepEqual(await statuses('', 'infer'), ['5:0', '5:0', '5:0', '6:0', '6:0', '5:0', '6:3', '6:3']);
});

test('ESN pushed without an UPDATE_SA: frames past the boundary fail (the NIC only knows high = 5)', async () => {
  assert.deepEqual(await statuses('', 'pushed'), ['5:0', '5:0', '5:0', '5:3', '5:3', '5:0', '5:3', '5:3']);
});

test('ESN pushed with UPDATE_SA at frame 4 (high = 6): the new subspace verifies, the late frame does not', async () => {
  const ev = '\nevents:\n  - at: { frame: 4 }\n    update: { sa: esn-gcm128-h5, spi: 0x007500e5, high: 6 }\n';
  assert.deepEqual(await statuses(ev, 'pushed'), ['5:0', '5:0', '5:0', '6:0', '6:0', '6:3', '6:3', '6:3']);
});
