/**
 * Pass-through: rx with an SA file that matches nothing writes every frame of every capture
 * fixture byte-identical, in order, with its timestamp and link type (read back with our reader,
 * and checked by tshark/capinfos when installed), and one OOB line per frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSaText } from '../src/sa/load.js';
import { runCapture } from '../src/pipeline/run.js';
import { openCapture } from '../src/capture/reader.js';
import { tsToNs } from '../src/capture/timestamp.js';

const CAP = fileURLToPath(new URL('../../fixtures/capture/', import.meta.url));
const NOTHING = parseSaText('version: 1\nsas:\n  - name: elsewhere\n    mode: transport\n    selector: { dst: 203.0.113.99 }\n    esp: { spi: 0x7fff0001, encryption: aes-gcm-128, encryptionKey: "8f3a91c2d47be5069a1c33f0e2b87d45aabbccdd" }\n', 'nothing.yaml');
const haveTshark = spawnSync('capinfos', ['-h']).status === 0;

async function readAll(path: string): Promise<{ data: string; ts: bigint; lt: number }[]> {
  const r = await openCapture(path);
  const out: { data: string; ts: bigint; lt: number }[] = [];
  for (let b = await r.nextBatch(256); b; b = await r.nextBatch(256)) {
    for (const f of b) out.push({ data: Buffer.from(f.data).toString('hex'), ts: tsToNs(r.interfaces[f.ifId]!, f.tsHi, f.tsLo), lt: r.interfaces[f.ifId]!.linkType });
  }
  await r.close();
  return out;
}

const fixtures = readdirSync(CAP).filter((f) => /\.pcap(ng)?$/.test(f));

for (const name of fixtures) {
  for (const format of ['pcapng', 'pcap'] as const) {
    test(`pass-through ${name} → ${format}`, async (t) => {
      const d = mkdtempSync(join(tmpdir(), 'ipsecov2-pt-'));
      const out = join(d, `out.${format}`);
      const oob = join(d, 'out.jsonl');
      const input = join(CAP, name);
      const want = await readAll(input);
      const linkTypes = new Set(want.map((f) => f.lt));
      if (format === 'pcap' && linkTypes.size > 1) {
        await assert.rejects(runCapture({ path: 'rx', input, output: out, oob, format, sa: NOTHING, inPlace: false, dropFailed: false, anyDirection: false, esn: 'infer', replayWindow: null, workers: 0, ivSeed: null, mtu: 1500, progress: false }), /pcap output cannot mix link types/);
        return;
      }
      const res = await runCapture({ path: 'rx', input, output: out, oob, format, sa: NOTHING, inPlace: false, dropFailed: false, anyDirection: false, esn: 'infer', replayWindow: null, workers: 0, ivSeed: null, mtu: 1500, progress: false });
      assert.equal(res.stats.framesIn, want.length);
      assert.equal(res.stats.framesOut, want.length);
      const got = await readAll(out);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) {
        assert.equal(got[i]!.data, want[i]!.data, `${name} frame ${i + 1} bytes`);
        assert.equal(got[i]!.lt, want[i]!.lt, `${name} frame ${i + 1} link type`);
        // pcap output carries micro- or nanoseconds: compare at the precision it keeps.
        const prec = format === 'pcap' ? 1000n : 1n;
        assert.equal(got[i]!.ts / prec, want[i]!.ts / prec, `${name} frame ${i + 1} timestamp`);
      }
      const lines = readFileSync(oob, 'utf8').trim().split('\n').filter((l) => l.length);
      assert.equal(lines.length, want.length, 'one OOB line per frame');
      for (const l of lines) assert.equal((JSON.parse(l) as { cryptoDone: number }).cryptoDone, 0);
      if (!haveTshark) { t.diagnostic('capinfos/tshark not installed: independent check skipped'); return; }
      const ci = spawnSync('capinfos', ['-M', '-c', out], { encoding: 'utf8' });
      assert.equal(ci.status, 0, ci.stderr);
      assert.match(ci.stdout, new RegExp(`Number of packets:\\s+${want.length}\\b`));
      const ts = spawnSync('tshark', ['-r', out, '-T', 'fields', '-e', 'frame.len'], { encoding: 'utf8' });
      assert.equal(ts.status, 0, ts.stderr);
      assert.equal(ts.stdout.trim().split('\n').filter((x) => x).length, want.length);
    });
  }
}
