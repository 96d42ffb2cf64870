/**
 * Writers: read → write → read identity (frame bytes, times, link types, interface details,
 * comments) for pcapng and pcap; tshark / capinfos accept what we write and show our comments;
 * pcap's limits give clear errors; file targets appear only on close; EPIPE is quiet.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCapture, openCaptureStream } from '../src/capture/reader.js';
import { tsToNs } from '../src/capture/timestamp.js';
import type { CaptureFrame, CaptureInterface } from '../src/capture/types.js';
import { CaptureWriteError, createCaptureWriter, createCaptureWriterStream, type CaptureWriter } from '../src/capture/writer.js';
import { collector, FIXTURES, hasTool, loadManifest, readAll, repoRoot } from './helpers/capture-util.js';

const manifest = loadManifest();
const tmp = mkdtempSync(join(tmpdir(), 'ipsecov2-capture-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const haveTshark = hasTool('tshark');

async function copyTo(w: CaptureWriter, input: string, comment?: (f: CaptureFrame) => string | null): Promise<{ ifaces: CaptureInterface[]; frames: CaptureFrame[] }> {
  const r = await openCapture(input);
  const map: number[] = [];
  const frames: CaptureFrame[] = [];
  for (let b = await r.nextBatch(7); b !== null; b = await r.nextBatch(7)) {
    while (map.length < r.interfaces.length) map.push(w.addInterface(r.interfaces[map.length]));
    for (const f of b) {
      w.writeFrame(map[f.ifId], f.tsHi, f.tsLo, f.data, f.origLen, comment ? comment(f) : f.comment, f.epbFlags);
      frames.push({ ...f, data: Buffer.from(f.data) });
    }
    await w.flush();
  }
  while (map.length < r.interfaces.length) map.push(w.addInterface(r.interfaces[map.length]));
  await w.close();
  return { ifaces: r.interfaces, frames };
}

function sameFrames(aIf: CaptureInterface[], a: CaptureFrame[], bIf: CaptureInterface[], b: CaptureFrame[], exactTs: boolean, comments: boolean): void {
  assert.equal(b.length, a.length);
  a.forEach((f, i) => {
    const g = b[i];
    assert.deepEqual(g.data, f.data, `frame ${i + 1} bytes`);
    assert.equal(g.origLen, f.origLen);
    assert.equal(tsToNs(bIf[g.ifId], g.tsHi, g.tsLo), tsToNs(aIf[f.ifId], f.tsHi, f.tsLo), `frame ${i + 1} time`);
    assert.equal(bIf[g.ifId].linkType, aIf[f.ifId].linkType);
    if (exactTs) assert.deepEqual([g.tsHi, g.tsLo, g.ifId], [f.tsHi, f.tsLo, f.ifId]);
    if (comments) {
      assert.equal(g.comment, f.comment);
      assert.equal(g.epbFlags, f.epbFlags);
    }
  });
}

function tshark(args: string[]): string {
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('capture writers', () => {
  for (const [name, m] of Object.entries(manifest)) {
    it(`pcapng round trip: ${name}`, async () => {
      const out = join(tmp, `${name}.rt.pcapng`);
      const w = await createCaptureWriter(out, { format: 'pcapng' });
      const src = await copyTo(w, join(FIXTURES, name));
      const r = await openCapture(out);
      const back = await readAll(r);
      assert.equal(r.warnings.length, 0, JSON.stringify(r.warnings));
      assert.deepEqual(
        r.interfaces.map(({ linkType, name: n, description, tsResol, tsOffset }) => ({ linkType, n, description, tsResol, tsOffset })),
        src.ifaces.map(({ linkType, name: n, description, tsResol, tsOffset }) => ({ linkType, n, description, tsResol, tsOffset })),
      );
      sameFrames(src.ifaces, src.frames, r.interfaces, back, true, true);
    });
    if (new Set(m.linkTypes).size === 1) {
      it(`pcap round trip: ${name}`, async () => {
        const out = join(tmp, `${name}.rt.pcap`);
        const w = await createCaptureWriter(out, { format: 'pcap' });
        let src;
        try {
          src = await copyTo(w, join(FIXTURES, name));
        } catch (e) {
          // several interfaces whose resolutions map to different pcap magics
          assert.ok(e instanceof CaptureWriteError && /cannot mix timestamp resolutions/.test(e.message));
          await w.abort();
          return;
        }
        const r = await openCapture(out);
        const back = await readAll(r);
        assert.equal(r.format, 'pcap');
        sameFrames(src.ifaces, src.frames, r.interfaces, back, false, false);
      });
    }
  }

  it('a file is written in whole buffers, a stream at every flush; both end complete', async () => {
    const iface: CaptureInterface = { linkType: 1, snapLen: 65535, name: null, description: null, tsResol: 6, tsOffset: 0 };
    const frame = Buffer.alloc(1000, 0xab);
    const out = join(tmp, 'whole.pcapng');
    const tmpFile = join(tmp, `.whole.pcapng.${process.pid}.tmp`);
    const w = await createCaptureWriter(out, { format: 'pcapng', bufferSize: 64 << 10 });
    const id = w.addInterface(iface);
    for (let i = 0; i < 10; i++) w.writeFrame(id, 0, i, frame, frame.length, null);
    await w.flush();
    // a part-filled buffer stays for later: nothing on disk (a write of the ~10 KB would be done by now)
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(readFileSync(tmpFile).length, 0);
    for (let i = 0; i < 1000; i++) { w.writeFrame(id, 0, i, frame, frame.length, null); await w.flush(); }
    const mid = readFileSync(tmpFile).length;
    assert.ok(mid > 0 && mid < w.bytesWritten, `on disk ${mid} of ${w.bytesWritten}`);
    await w.close();
    const r = await openCapture(out);
    assert.equal((await readAll(r)).length, 1010);
    // a stream gets each flush's bytes at once
    const c = collector();
    const s = createCaptureWriterStream(c.stream, { format: 'pcapng', bufferSize: 64 << 10 });
    const sid = s.addInterface(iface);
    s.writeFrame(sid, 0, 0, frame, frame.length, null);
    await s.flush();
    await new Promise((res) => setImmediate(res));
    assert.equal(c.bytes().length, s.bytesWritten);
    await s.close();
  });

  it('pcap output refuses to mix link types, naming both', async () => {
    const { stream } = collector();
    const w = createCaptureWriterStream(stream, { format: 'pcap' });
    w.addInterface({ linkType: 1, snapLen: 0, name: null, description: null, tsResol: 6, tsOffset: 0 });
    assert.throws(
      () => w.addInterface({ linkType: 101, snapLen: 0, name: null, description: null, tsResol: 6, tsOffset: 0 }),
      (e: unknown) => e instanceof CaptureWriteError && e.code === 'ERR_CAPTURE_WRITE' && e.message === 'pcap output cannot mix link types (1 Ethernet and 101 Raw IP); use pcapng',
    );
    await w.close();
  });

  it('pcap output: binary and other decimal resolutions become nanoseconds, tsOffset applied', async () => {
    const c = collector();
    const w = createCaptureWriterStream(c.stream, { format: 'pcap' });
    const iface: CaptureInterface = { linkType: 101, snapLen: 0, name: null, description: null, tsResol: 0x94, tsOffset: 10 };
    const id = w.addInterface(iface);
    w.writeFrame(id, 0, 3 * 2 ** 20 + 2 ** 19, Buffer.from([0x45]), 1, null);
    await w.close();
    const r = await openCaptureStream([c.bytes()], 'mem');
    const [f] = await readAll(r);
    assert.equal(r.interfaces[0].tsResol, 9);
    assert.equal(tsToNs(r.interfaces[0], f.tsHi, f.tsLo), 13_500_000_000n);
  });

  it('pcapng output: comments are shown by tshark as frame.comment; capinfos accepts it', async (t) => {
    if (!haveTshark) return t.skip('tshark not installed');
    const out = join(tmp, 'comments.pcapng');
    const w = await createCaptureWriter(out, { format: 'pcapng' });
    await copyTo(w, join(FIXTURES, 'mergecap-multi.pcapng'), (f) => (f.index % 3 === 0 ? null : `cryptoStatus=CRYPTO_SUCCESS frame ${f.index} ✓`));
    const lines = tshark(['-r', out, '-T', 'fields', '-e', 'frame.comment']).split('\n').slice(0, -1);
    assert.equal(lines.length, manifest['mergecap-multi.pcapng'].frames.length);
    lines.forEach((l, i) => assert.equal(l, (i + 1) % 3 === 0 ? '' : `cryptoStatus=CRYPTO_SUCCESS frame ${i + 1} ✓`));
    const info = spawnSync('capinfos', ['-M', '-c', '-t', '-E', out], { encoding: 'utf8' });
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /File type:\s+(Wireshark\/\.\.\. - )?pcapng/);
    assert.match(info.stdout, /Number of packets:\s+17/);
    assert.match(tshark(['-r', out, '-T', 'fields', '-e', 'frame.interface_id', '-c', '1']), /^\d\n$/);
    const appl = spawnSync('capinfos', ['-F', out], { encoding: 'utf8' }).stdout;
    assert.match(appl, /Capture application:\s+ipsecov2/);
  });

  it('pcapng output keeps interface names, tsresol and tsoffset as tshark sees them', async (t) => {
    if (!haveTshark) return t.skip('tshark not installed');
    const out = join(tmp, 'sections.pcapng');
    await copyTo(await createCaptureWriter(out, { format: 'pcapng' }), join(FIXTURES, 'struct-sections.pcapng'));
    const times = tshark(['-r', out, '-T', 'fields', '-e', 'frame.time_epoch']).trim().split('\n');
    assert.deepEqual(times, manifest['struct-sections.pcapng'].frames.map((f) => f.epoch ?? '0.000000000'));
    const names = tshark(['-r', out, '-T', 'fields', '-e', 'frame.interface_name']).trim().split('\n');
    assert.deepEqual(names.slice(0, 2), ['eth0', 'tun0']);
  });

  it('pcap output of a nanosecond input is read by tshark with the same times', async (t) => {
    if (!haveTshark) return t.skip('tshark not installed');
    const out = join(tmp, 'nano.pcap');
    await copyTo(await createCaptureWriter(out, { format: 'pcap' }), join(FIXTURES, 'struct-be-nano.pcap'));
    const times = tshark(['-r', out, '-T', 'fields', '-e', 'frame.time_epoch']).trim().split('\n');
    assert.deepEqual(times, manifest['struct-be-nano.pcap'].frames.map((f) => f.epoch));
  });

  it('file target: a temp file beside the target until close; abort removes it', async () => {
    const dir = mkdtempSync(join(tmp, 'tgt-'));
    const target = join(dir, 'out.pcapng');
    const w = await createCaptureWriter(target, { format: 'pcapng' });
    w.addInterface({ linkType: 1, snapLen: 0, name: null, description: null, tsResol: 6, tsOffset: 0 });
    w.writeFrame(0, 0, 1, Buffer.alloc(60), 60, 'x');
    await w.flush();
    assert.deepEqual(readdirSync(dir), [`.out.pcapng.${process.pid}.tmp`]);
    await w.close();
    assert.deepEqual(readdirSync(dir), ['out.pcapng']);
    assert.equal(readFileSync(target).length, w.bytesWritten);
    const w2 = await createCaptureWriter(join(dir, 'b.pcap'), { format: 'pcap' });
    w2.addInterface({ linkType: 1, snapLen: 0, name: null, description: null, tsResol: 6, tsOffset: 0 });
    w2.writeFrame(0, 0, 1, Buffer.alloc(60), 60, null);
    await w2.abort();
    assert.deepEqual(readdirSync(dir), ['out.pcapng']);
  });

  it('misuse: undeclared interface, write after close', async () => {
    const w = createCaptureWriterStream(collector().stream, { format: 'pcapng' });
    assert.throws(() => w.writeFrame(0, 0, 0, Buffer.alloc(1), 1, null), CaptureWriteError);
    await w.close();
    assert.throws(() => w.addInterface({ linkType: 1, snapLen: 0, name: null, description: null, tsResol: 6, tsOffset: 0 }), CaptureWriteError);
  });

  it('large frames and many of them cross output buffers intact (bufferSize 4096)', async () => {
    const c = collector();
    const w = createCaptureWriterStream(c.stream, { format: 'pcapng', bufferSize: 4096 });
    const id = w.addInterface({ linkType: 1, snapLen: 0, name: null, description: null, tsResol: 9, tsOffset: 0 });
    const sizes = [1, 3, 4, 5, 9000, 4093, 65535, 60, 1500];
    for (let i = 0; i < 200; i++) {
      const n = sizes[i % sizes.length];
      w.writeFrame(id, i, i * 7, Buffer.alloc(n, i & 0xff), n + (i & 1), i % 4 === 0 ? `c${i}` : null, i % 5 === 0 ? i : null);
      if (i % 17 === 0) await w.flush();
    }
    await w.close();
    assert.equal(c.bytes().length, w.bytesWritten);
    const back = await readAll(await openCaptureStream([c.bytes()], 'mem'));
    assert.equal(back.length, 200);
    back.forEach((f, i) => {
      const n = sizes[i % sizes.length];
      assert.deepEqual(f.data, Buffer.alloc(n, i & 0xff));
      assert.equal(f.origLen, n + (i & 1));
      assert.deepEqual([f.tsHi, f.tsLo], [i, i * 7]);
      assert.equal(f.comment, i % 4 === 0 ? `c${i}` : null);
      assert.equal(f.epbFlags, i % 5 === 0 ? i : null);
    });
  });

  it('stdout closed by the reader (EPIPE): closedByPeer, no unhandled error, exit 0', async () => {
    const mod = join(repoRoot(), 'dist', 'src', 'capture', 'writer.js');
    const script = `
      import { createCaptureWriter } from ${JSON.stringify(mod)};
      const w = await createCaptureWriter('-', { format: 'pcapng' });
      const id = w.addInterface({ linkType: 1, snapLen: 0, name: null, description: null, tsResol: 6, tsOffset: 0 });
      const data = Buffer.alloc(1400);
      for (let i = 0; i < 20000 && !w.closedByPeer; i++) { w.writeFrame(id, 0, i, data, 1400, null); if (i % 100 === 0) await w.flush(); }
      await w.close();
      process.stderr.write('closedByPeer=' + w.closedByPeer + '\\n');`;
    if (!existsSync(mod)) throw new Error('build first: ' + mod);
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    assert.equal(code, 0, err);
    assert.match(err, /closedByPeer=true/);
  });

  it('stdin to stdout pipeline: cat in.pcap | copy - -w - | tshark -r -', async (t) => {
    if (!haveTshark) return t.skip('tshark not installed');
    const dir = join(repoRoot(), 'dist', 'src', 'capture');
    const script = `
      import { openCapture } from ${JSON.stringify(join(dir, 'reader.js'))};
      import { createCaptureWriter } from ${JSON.stringify(join(dir, 'writer.js'))};
      const r = await openCapture('-');
      const w = await createCaptureWriter('-', { format: 'pcapng' });
      const map = [];
      for (let b = await r.nextBatch(4); b; b = await r.nextBatch(4)) {
        while (map.length < r.interfaces.length) map.push(w.addInterface(r.interfaces[map.length]));
        for (const f of b) w.writeFrame(map[f.ifId], f.tsHi, f.tsLo, f.data, f.origLen, 'via stdin #' + f.index);
        await w.flush();
      }
      await w.close();`;
    const input = join(FIXTURES, 'scapy-sll2.pcap');
    const res = spawnSync('bash', ['-c', `cat "$1" | "$2" --input-type=module -e "$3" | tshark -r - -T fields -e frame.comment -e esp.spi`, 'sh', input, process.execPath, script], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(res.stdout.trim().split('\n'), ['via stdin #1\t0x0000c001', 'via stdin #2\t0x0000c001', 'via stdin #3\t0x0000c001']);
  });
});
