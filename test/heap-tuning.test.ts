/**
 * glibc heap tuning (src/pipeline/heap.ts): done only when the run asks for it (the CLI does), off
 * with IPSECOV2_NO_HEAP_TUNING=1, the same output either way, and fewer page faults where the
 * kernel has transparent huge pages. The tuning is process-wide and done once, so every case runs
 * in a process of its own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCapture } from '../src/pipeline/run.js';
import { loadSaFile } from '../src/sa/load.js';
import { nativeAvailable, tuneHeap } from '../src/crypto/native.js';
import { buildPcap } from './helpers/capture-util.js';
import { rxOptions } from './helpers/synthetic-esp.js';
import { tunGcmSa, writeSaFile } from './helpers/sa-yaml.js';
import { ether, ipPacket, Prng } from './tx-helpers.js';

const glibcNative = process.platform === 'linux' && nativeAvailable() && !!(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
const skip = glibcNative ? false : 'needs Linux with glibc and the addon';
const BIN = fileURLToPath(new URL('../../bin/ipsecov2', import.meta.url));
const DIST_SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** The kernel's transparent huge page mode ("always", "madvise" or "never"), or null. */
function thpMode(): string | null {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Source of a child script: bytes of this process's mappings flagged for huge pages (VmFlags hg). */
const HG_BYTES = `
const hgBytes = () => {
  let n = 0;
  for (const b of require('node:fs').readFileSync('/proc/self/smaps', 'utf8').split(/\\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(b);
    if (m && /\\nVmFlags:.*\\bhg\\b/.test(b)) n += parseInt(m[2], 16) - parseInt(m[1], 16);
  }
  return n;
};`;

/** Run an ES module script in a child node; its last line of output, parsed. */
function child(script: string, env: NodeJS.ProcessEnv = {}, flags: string[] = []): Record<string, number> {
  const p = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);${HG_BYTES}\n${script}`], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(p.status, 0, p.stderr);
  return JSON.parse(p.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

describe('heap tuning', () => {
  let dir = '';
  let saFile = '';
  let input = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipsecov2-heap-'));
    saFile = writeSaFile(join(dir, 'sa.yaml'), [tunGcmSa()]);
    // 30k frames of ~1.4 KB (42 MB) sealed by the tx path: enough 1 MiB output buffers to matter
    const r = new Prng(11);
    const plain = Array.from({ length: 16 }, () => ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 1372, dst: Buffer.from([10, 1, 1, 9]) })));
    const frames = Array.from({ length: 30000 }, (_, i) => ({ sec: 1700000000 + (i >> 10), frac: i, data: plain[i % plain.length]! }));
    const plainFile = join(dir, 'plain.pcap');
    writeFileSync(plainFile, buildPcap(frames, { nano: true }));
    input = join(dir, 'esp.pcap');
    await runCapture({ ...rxOptions(loadSaFile(saFile), plainFile, input, null, 0), path: 'tx', format: 'pcap', ivSeed: '0102' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('heapHuge: once per process, a range flagged for huge pages; bad sizes refused', { skip }, () => {
    // refused before anything is done: safe in this process
    assert.throws(() => tuneHeap(0), /heapHuge: a size/);
    assert.throws(() => tuneHeap(32 << 20), /heapHuge: a size/);
    const r = child(`
      const { tuneHeap } = await import(${JSON.stringify(join(DIST_SRC, 'crypto/native.js'))});
      const hg0 = hgBytes(), first = tuneHeap(16 << 20), second = tuneHeap(16 << 20);
      console.log(JSON.stringify({ hg0, first, second, hg: hgBytes() }));`);
    assert.equal(r.second, 0);
    assert.equal(r.hg0, 0);
    // a kernel built without transparent huge pages refuses the advice (EINVAL)
    if (thpMode() === null && r.first === -22) return;
    // the heap grows by the 16 MiB asked for and the 64 MiB pad: all but the edges are advised
    assert.ok(r.first! >= 64 << 20 && r.first! <= 80 << 20, `advised ${r.first}`);
    assert.ok(r.hg! >= r.first!, `hg mappings ${r.hg} bytes`);
  });

  it('a 1 MiB buffer made again after one was freed reuses its memory (no fresh pages)', { skip }, () => {
    const churn = (tune: boolean): number => child(`
      const { tuneHeap } = await import(${JSON.stringify(join(DIST_SRC, 'crypto/native.js'))});
      ${tune ? 'tuneHeap(16 << 20);' : ''}
      const loop = (size) => {
        const f0 = process.resourceUsage().minorPageFault;
        for (let i = 0; i < 50; i++) { let b = Buffer.allocUnsafeSlow(size); b.fill(i); b = null; gc(); }
        return process.resourceUsage().minorPageFault - f0;
      };
      loop(1 << 20); // the first buffers are fresh memory either way
      const control = loop(64); // the faults of the loop itself (gc)
      console.log(JSON.stringify({ perBuffer: (loop(1 << 20) - control) / 50 }));`, {}, ['--expose-gc']).perBuffer!;
    // a 1 MiB buffer is 256 pages: glibc's defaults gave 21-81 faults per buffer here, tuned 0
    const off = Math.max(churn(false), churn(false)), on = churn(true);
    assert.ok(on <= 2, `faults per 1 MiB buffer, tuned: ${on}`);
    assert.ok(off >= 10, `faults per 1 MiB buffer with glibc's defaults: ${off} (the test measures nothing)`);
  });

  it('runCapture tunes the heap only when asked', { skip }, () => {
    const run = (heapTuning: boolean | undefined): Record<string, number> => child(`
      const { runCapture } = await import(${JSON.stringify(join(DIST_SRC, 'pipeline/run.js'))});
      const { loadSaFile } = await import(${JSON.stringify(join(DIST_SRC, 'sa/load.js'))});
      const res = await runCapture({ path: 'rx', input: ${JSON.stringify(input)}, output: null, oob: null, format: 'pcapng', sa: loadSaFile(${JSON.stringify(saFile)}),
        inPlace: false, dropFailed: false, anyDirection: true, esn: 'infer', replayWindow: null, workers: 0, ivSeed: null, mtu: 1500, progress: false${heapTuning === undefined ? '' : `, heapTuning: ${heapTuning}`} });
      console.log(JSON.stringify({ huge: res.stats.hugeHeapBytes, hg: hgBytes(), frames: res.stats.framesIn }));`);
    for (const r of [run(undefined), run(false)]) {
      assert.equal(r.frames, 30000);
      assert.equal(r.huge, 0);
      assert.equal(r.hg, 0);
    }
    const on = run(true);
    assert.ok(on.hg! >= on.huge!, JSON.stringify(on));
    if (thpMode() !== null) assert.ok(on.huge! > 0, JSON.stringify(on)); // else the advice is refused
  });

  it('the CLI tunes it (IPSECOV2_NO_HEAP_TUNING=1: not): same outputs, fewer page faults', { skip }, () => {
    const run = (name: string, env: NodeJS.ProcessEnv): { hugeHeapBytes: number; minorPageFaults: number; pcapng: Buffer; oob: Buffer } => {
      const out = join(dir, `${name}.pcapng`), oob = join(dir, `${name}.jsonl`);
      const p = spawnSync(process.execPath, [BIN, 'rx', '--sa', saFile, '--any-direction', input, '-w', out, '--oob', oob, '--workers', '0', '--json'], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(p.status, 0, p.stderr);
      const j = JSON.parse(p.stderr.trim().split('\n').pop()!) as { hugeHeapBytes: number; minorPageFaults: number; framesIn: number; outcomes: Record<string, number> };
      assert.equal(j.outcomes.CRYPTO_SUCCESS, 30000);
      return { hugeHeapBytes: j.hugeHeapBytes, minorPageFaults: j.minorPageFaults, pcapng: readFileSync(out), oob: readFileSync(oob) };
    };
    const offs: number[] = [];
    const ons: number[] = [];
    let off = run('off', { IPSECOV2_NO_HEAP_TUNING: '1' });
    let on = run('on', {});
    assert.equal(off.hugeHeapBytes, 0);
    if (thpMode() !== null) assert.ok(on.hugeHeapBytes > 0);
    assert.ok(on.pcapng.equals(off.pcapng), 'the pcapng output differs');
    assert.ok(on.oob.equals(off.oob), 'the OOB output differs');
    offs.push(off.minorPageFaults);
    ons.push(on.minorPageFaults);
    const mode = thpMode();
    if (mode !== 'always' && mode !== 'madvise') return; // no huge pages: only the output is checked
    for (let i = 0; i < 2; i++) {
      off = run('off', { IPSECOV2_NO_HEAP_TUNING: '1' });
      on = run('on', {});
      offs.push(off.minorPageFaults);
      ons.push(on.minorPageFaults);
    }
    // the best of three each (faults hardly vary from run to run; the least is the least disturbed)
    const bestOff = Math.min(...offs), bestOn = Math.min(...ons);
    assert.ok(bestOn < bestOff * 0.85, `page faults: ${ons.join(', ')} tuned against ${offs.join(', ')}`);
  });
});
