/**
 * `ipsecov2 live` (issue #7).
 *
 * The end-to-end part creates two network namespaces joined by a veth pair (names unique per
 * run; addresses 10.77.0.0/24 exist only inside the namespaces), sends ESP from one side (made
 * by the project's own tx path and sent through cap, and made by Scapy), runs
 * `ip netns exec NS node bin/ipsecov2 live ...` on the other side and checks the decrypted
 * capture and the OOB lines. It is skipped, with the reason shown, when not root, without the
 * `cap` binding, without iproute2 or when namespaces cannot be created (with
 * IPSECOV2_REQUIRE_LIVE=1, as in CI, those reasons fail instead). Everything it starts it stops by
 * PID; the namespaces are removed in the after hook.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openCapture, openCaptureStream } from '../src/capture/reader.js';
import { LiveCaptureReader, liveCaptureAvailable, capLinkType } from '../src/capture/live.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin', 'ipsecov2');
const SCAPY_SEND = join(ROOT, 'scripts', 'live-esp-send.py');
const PY = '/usr/bin/python3';

const PID = process.pid;
const NS_A = `ipo2a-${PID}`;
const NS_B = `ipo2b-${PID}`;
const IF_A = 'ipo2v0'; // names live inside the namespaces, so they cannot clash with the host's
const IF_B = 'ipo2v1';
const MAC_A = '02:00:00:00:77:01';
const MAC_B = '02:00:00:00:77:02';
const IP_A = '10.77.0.1';
const IP_B = '10.77.0.2';

const GCM_KEY = '0x00112233445566778899aabbccddeeff01020304';
const CBC_KEY = '0x101112131415161718191a1b1c1d1e1f';
const CBC_AUTH = '0x202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
const TX_KEY = '0x303132333435363738393a3b3c3d3e3f a1a2a3a4';

/** B's view: everything A sends is inbound. */
const SA_B = `version: 1
sas:
  - name: a-to-b-tx
    direction: inbound
    mode: transport
    esp: { spi: 0x3001, encryption: aes-gcm-128, encryptionKey: "${TX_KEY}" }
  - name: a-to-b-gcm
    direction: inbound
    mode: transport
    esp: { spi: 0x2001, encryption: aes-gcm-128, encryptionKey: "${GCM_KEY}" }
  - name: a-to-b-cbc
    direction: inbound
    mode: transport
    esp: { spi: 0x2002, encryption: aes-cbc-128, encryptionKey: "${CBC_KEY}", integrity: hmac-sha256-128, integrityKey: "${CBC_AUTH}" }
`;
/** A's view, for the project's send path. */
const SA_A = `version: 1
sas:
  - name: a-to-b-tx
    direction: outbound
    mode: transport
    selector: { src: ${IP_A}/32, dst: ${IP_B}/32, protocol: udp }
    sequence: { next: 1 }
    esp: { spi: 0x3001, encryption: aes-gcm-128, encryptionKey: "${TX_KEY}" }
`;

function sh(cmd: string, args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.error ? -1 : r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') + (r.signal ? ` (killed by ${r.signal})` : '') };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.err.trim()}`);
  return r.out;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const capState = await liveCaptureAvailable();

/** Why the namespace tests cannot run here, or null. */
function nsSkipReason(): string | null {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (!isRoot) return 'needs root (creates network namespaces and captures): run as root';
  if (!capState.ok) return `the optional 'cap' package is not usable (${capState.reason}); install libpcap-dev and run 'npm rebuild cap'`;
  if (sh('ip', ['-V']).status !== 0) return "iproute2's 'ip' not found (apt-get install iproute2)";
  const probe = `ipo2p-${PID}`;
  const r = sh('ip', ['netns', 'add', probe]);
  if (r.status !== 0) return `cannot create network namespaces here: ${r.err.trim().split('\n')[0]}`;
  sh('ip', ['netns', 'del', probe]);
  return null;
}
const NS_SKIP = nsSkipReason();
// CI sets IPSECOV2_REQUIRE_LIVE=1 so that a missing prerequisite fails instead of skipping quietly.
if (NS_SKIP && process.env.IPSECOV2_REQUIRE_LIVE === '1') {
  test('live prerequisites (IPSECOV2_REQUIRE_LIVE=1)', () => { assert.fail(`live tests cannot run: ${NS_SKIP}`); });
}
const SCAPY_SKIP = NS_SKIP ?? (sh(PY, ['-c', 'import scapy.layers.ipsec, cryptography']).status === 0 ? null : 'needs /usr/bin/python3 with python3-scapy and python3-cryptography');
if (!NS_SKIP && SCAPY_SKIP && process.env.IPSECOV2_REQUIRE_LIVE === '1') {
  test('Scapy prerequisite (IPSECOV2_REQUIRE_LIVE=1)', () => { assert.fail(SCAPY_SKIP); });
}

/** Every process this file starts that may outlive a step; killed by PID in after(). */
const children = new Set<ChildProcess>();

interface Live {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Start `ipsecov2 live` inside namespace `ns`; resolves once it is listening. */
async function startLive(ns: string, args: string[], opts: { stdoutRaw?: boolean; pre?: string[] } = {}): Promise<Live> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, ...(opts.pre ?? []), 'live', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  children.add(child);
  let out = '';
  let err = '';
  if (!opts.stdoutRaw) child.stdout!.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString('utf8'); });
  const exit = new Promise<number | null>((res) => child.on('exit', (code) => { children.delete(child); res(code); }));
  const t0 = Date.now();
  while (!/listening on/.test(err)) {
    if (child.exitCode !== null || Date.now() - t0 > 15_000) {
      killChild(child);
      throw new Error(`ipsecov2 live did not start (exit ${child.exitCode}): ${err}`);
    }
    await sleep(50);
  }
  return { child, stdout: () => out, stderr: () => err, exit };
}

function killChild(c: ChildProcess): void {
  if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

async function waitExit(l: Live, ms = 20_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const to = new Promise<'timeout'>((res) => { timer = setTimeout(() => res('timeout'), ms); });
  const r = await Promise.race([l.exit, to]);
  clearTimeout(timer);
  if (r === 'timeout') {
    killChild(l.child);
    throw new Error(`ipsecov2 live did not finish within ${ms} ms; stderr: ${l.stderr()}`);
  }
  return r;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Ethernet/IPv4/UDP frames A → B carrying `marker-n`, as a little-endian microsecond pcap. */
function plainPcap(marker: string, n: number): Buffer {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20);
  parts.push(gh);
  const mac = (s: string): Buffer => Buffer.from(s.replace(/:/g, ''), 'hex');
  const ip4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
  for (let i = 1; i <= n; i++) {
    const payload = Buffer.from(`${marker}-${i}`);
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(40000, 0);
    udp.writeUInt16BE(5001, 2);
    udp.writeUInt16BE(8 + payload.length, 4);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 8 + payload.length, 2);
    ip.writeUInt16BE(i, 4);
    ip[8] = 64;
    ip[9] = 17;
    ip4(IP_A).copy(ip, 12);
    ip4(IP_B).copy(ip, 16);
    let sum = 0;
    for (let k = 0; k < 20; k += 2) sum += ip.readUInt16BE(k);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    ip.writeUInt16BE(~sum & 0xffff, 10);
    const frame = Buffer.concat([mac(MAC_B), mac(MAC_A), Buffer.from([0x08, 0x00]), ip, udp, payload]);
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(1_700_000_000 + i, 0);
    rh.writeUInt32LE(frame.length, 8);
    rh.writeUInt32LE(frame.length, 12);
    parts.push(rh, frame);
  }
  return Buffer.concat(parts);
}

/** Send every frame of a capture from namespace `ns` out of `iface`, through cap (pcap_sendpacket). */
function sendCapture(ns: string, iface: string, file: string): void {
  const readerUrl = pathToFileURL(join(ROOT, 'dist', 'src', 'capture', 'reader.js')).href;
  const script = `
    import { createRequire } from 'node:module';
    import { openCapture } from ${JSON.stringify(readerUrl)};
    const { Cap } = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('cap');
    const c = new Cap();
    c.open(${JSON.stringify(iface)}, 'ether proto 0x88b5', 1 << 20, Buffer.alloc(65536));
    const r = await openCapture(${JSON.stringify(file)});
    let n = 0;
    for (let b = await r.nextBatch(64); b; b = await r.nextBatch(64)) for (const f of b) { c.send(f.data, f.data.length); n++; }
    await r.close();
    c.close();
    process.stderr.write('sent ' + n + ' frames\\n');
  `;
  // The sender is test tooling over cap. Once, in a full `npm test` under load, it died by a signal
  // after every frame had gone out ("sent N frames" printed, status null; not reproduced in 46
  // runs since): the frames count, not the sender's exit.
  const r = sh('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script]);
  if (r.status !== 0 && !(r.status === null && /sent \d+ frames/.test(r.err))) throw new Error(`sending ${file} in ${ns} failed (${r.status}): ${r.err.trim()}`);
}

function scapySend(args: string[]): void {
  must('ip', ['netns', 'exec', NS_A, PY, SCAPY_SEND, '--iface', IF_A, '--src-mac', MAC_A, '--dst-mac', MAC_B, '--src', IP_A, '--dst', IP_B, ...args]);
}

interface Oob { frame: number; sa: string | null; spi: string | null; seq: number | null; cryptoDone: number; cryptoStatus: string; detail: string | null; handle: number | null }

function oobLines(text: string): Oob[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Oob);
}

/** UDP payloads (as strings) of the IPv4/UDP frames of an Ethernet capture; ESP frames give 'ESP'. */
async function payloads(file: string): Promise<string[]> {
  const r = await openCapture(file);
  const out: string[] = [];
  for (let b = await r.nextBatch(256); b; b = await r.nextBatch(256)) {
    for (const f of b) out.push(udpPayload(f.data));
  }
  await r.close();
  return out;
}

function udpPayload(u: Uint8Array): string {
  const d = Buffer.from(u.buffer, u.byteOffset, u.length);
  if (d.readUInt16BE(12) !== 0x0800) return `ethertype 0x${d.readUInt16BE(12).toString(16)}`;
  const ihl = (d[14]! & 0x0f) * 4;
  const proto = d[14 + 9];
  if (proto === 50) return 'ESP';
  if (proto !== 17) return `proto ${proto}`;
  const totalLen = d.readUInt16BE(16);
  return d.subarray(14 + ihl + 8, 14 + totalLen).toString('latin1');
}

let work = '';
/** Set when the project's tx path could not make the ESP frames (Scapy made them instead). */
let txUnavailable: string | null = null;

describe('live capture between two network namespaces', { skip: NS_SKIP ?? false }, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'ipsecov2-live-'));
    writeFileSync(join(work, 'b.yaml'), SA_B, { mode: 0o600 });
    writeFileSync(join(work, 'a.yaml'), SA_A, { mode: 0o600 });
    must('ip', ['netns', 'add', NS_A]);
    must('ip', ['netns', 'add', NS_B]);
    // The veth pair is created inside A with its peer moved straight into B: nothing touches the
    // host's namespace.
    must('ip', ['-n', NS_A, 'link', 'add', IF_A, 'address', MAC_A, 'type', 'veth', 'peer', 'name', IF_B, 'address', MAC_B, 'netns', NS_B]);
    for (const [ns, ifc, addr] of [[NS_A, IF_A, IP_A], [NS_B, IF_B, IP_B]] as const) {
      sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
      must('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', ifc]);
      must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      must('ip', ['-n', ns, 'link', 'set', ifc, 'up']);
    }
    // ESP made by the project's own send path (deterministic IVs); when that path does not work
    // in this build, the same frames (SA, sequence numbers, payloads) made by Scapy instead.
    writeFileSync(join(work, 'plain.pcap'), plainPcap('ipsecov2-tx', 4));
    const tx = sh(process.execPath, [BIN, 'tx', '--quiet', '--sa', join(work, 'a.yaml'), '--iv-seed', '0011223344556677', '--workers', '0', join(work, 'plain.pcap'), '-w', join(work, 'esp.pcap')]);
    if (tx.status !== 0) {
      txUnavailable = `the project's tx path failed (exit ${tx.status}): ${tx.err.trim().split('\n')[0]}`;
      if (SCAPY_SKIP) throw new Error(`${txUnavailable}; and no Scapy to make the ESP frames instead (${SCAPY_SKIP})`);
      must(PY, [SCAPY_SEND, '--iface', IF_A, '--src-mac', MAC_A, '--dst-mac', MAC_B, '--src', IP_A, '--dst', IP_B, '--spi', '0x3001', '--alg', 'gcm', '--key', TX_KEY, '--count', '4', '--marker', 'ipsecov2-tx', '--pcap', join(work, 'esp.pcap'), '--no-send']);
    }
  });

  after(() => {
    for (const c of children) killChild(c);
    children.clear();
    sh('ip', ['netns', 'del', NS_A]);
    sh('ip', ['netns', 'del', NS_B]);
    if (work) rmSync(work, { recursive: true, force: true });
    const left = sh('ip', ['netns', 'list']).out;
    assert.ok(!left.includes(NS_A) && !left.includes(NS_B), `namespaces left behind: ${left}`);
  });

  test('ESP from the project\'s tx path: live -c N decrypts every frame', async (t) => {
    if (txUnavailable) { t.skip(txUnavailable); return; }
    assert.deepEqual(await payloads(join(work, 'esp.pcap')), ['ESP', 'ESP', 'ESP', 'ESP'], 'tx produced ESP');
    const out = join(work, 'tx-live.pcapng');
    const oob = join(work, 'tx-live.jsonl');
    const live = await startLive(NS_B, ['-i', IF_B, '--sa', join(work, 'b.yaml'), '-f', 'esp', '-c', '4', '-w', out, '--oob', oob]);
    sendCapture(NS_A, IF_A, join(work, 'esp.pcap'));
    assert.equal(await waitExit(live), 0, live.stderr());
    assert.deepEqual(await payloads(out), ['ipsecov2-tx-1', 'ipsecov2-tx-2', 'ipsecov2-tx-3', 'ipsecov2-tx-4']);
    const recs = oobLines(readFileSync(oob, 'utf8'));
    assert.equal(recs.length, 4);
    recs.forEach((r, i) => {
      assert.equal(r.frame, i + 1);
      assert.equal(r.sa, 'a-to-b-tx');
      assert.equal(r.spi, '0x00003001');
      assert.equal(r.seq, i + 1);
      assert.equal(r.cryptoDone, 1);
      assert.equal(r.cryptoStatus, 'CRYPTO_SUCCESS');
    });
    assert.match(live.stderr(), /ipsecov2 rx: 4 frames/);
  });

  test('ESP from Scapy (AES-GCM, AES-CBC+HMAC-SHA256, one forged ICV): decrypted capture and OOB statuses', { skip: SCAPY_SKIP ?? false }, async () => {
    const out = join(work, 'scapy-live.pcapng');
    const oob = join(work, 'scapy-live.jsonl');
    const live = await startLive(NS_B, ['-i', IF_B, '--sa', join(work, 'b.yaml'), '-f', 'esp', '-c', '6', '-w', out, '--oob', oob]);
    scapySend(['--spi', '0x2001', '--alg', 'gcm', '--key', GCM_KEY, '--count', '3', '--marker', 'scapy-gcm']);
    scapySend(['--spi', '0x2002', '--alg', 'cbc-sha256', '--key', CBC_KEY, '--auth-key', CBC_AUTH, '--count', '3', '--marker', 'scapy-cbc', '--tamper-last']);
    assert.equal(await waitExit(live), 0, live.stderr());
    const p = await payloads(out);
    assert.deepEqual(p.slice(0, 5), ['scapy-gcm-1', 'scapy-gcm-2', 'scapy-gcm-3', 'scapy-cbc-1', 'scapy-cbc-2']);
    assert.equal(p[5], 'ESP', 'the forged frame is kept unchanged');
    const recs = oobLines(readFileSync(oob, 'utf8'));
    assert.deepEqual(recs.map((r) => [r.sa, r.seq, r.cryptoDone, r.cryptoStatus]), [
      ['a-to-b-gcm', 1, 1, 'CRYPTO_SUCCESS'],
      ['a-to-b-gcm', 2, 1, 'CRYPTO_SUCCESS'],
      ['a-to-b-gcm', 3, 1, 'CRYPTO_SUCCESS'],
      ['a-to-b-cbc', 1, 1, 'CRYPTO_SUCCESS'],
      ['a-to-b-cbc', 2, 1, 'CRYPTO_SUCCESS'],
      ['a-to-b-cbc', 3, 1, 'CRYPTO_TRANSPORT_ESP_AUTH_FAILED'],
    ]);
    assert.equal(recs[5]!.detail, 'ICV mismatch');
  });

  test('-w - streams each frame as it arrives; SIGINT finishes, closes a valid capture, exits 0', async () => {
    const live = await startLive(NS_B, ['-i', IF_B, '--sa', join(work, 'b.yaml'), '-f', 'esp', '-w', '-'], { stdoutRaw: true });
    const reader = await Promise.all([
      openCaptureStream(live.child.stdout!, 'live stdout'),
      (async () => { await sleep(100); sendCapture(NS_A, IF_A, join(work, 'esp.pcap')); })(),
    ]).then(([r]) => r);
    const got: string[] = [];
    const t0 = Date.now();
    while (got.length < 4) {
      const b = await reader.nextBatch(16);
      assert.ok(b !== null, `stream ended early; stderr: ${live.stderr()}`);
      for (const f of b) got.push(udpPayload(f.data));
      assert.ok(Date.now() - t0 < 15_000, 'frames did not arrive');
    }
    assert.equal(live.child.exitCode, null, 'frames were written while the capture was still running');
    assert.deepEqual(got, ['ipsecov2-tx-1', 'ipsecov2-tx-2', 'ipsecov2-tx-3', 'ipsecov2-tx-4']);
    process.kill(live.child.pid!, 'SIGINT');
    assert.equal(await waitExit(live), 0, live.stderr());
    assert.equal(await reader.nextBatch(16), null);
    assert.equal(reader.truncated, false);
    assert.equal(reader.warnings.length, 0);
    await reader.close();
    assert.match(live.stderr(), /ipsecov2 rx: 4 frames .* → 4 frames to stdout/);
    assert.doesNotMatch(live.stderr(), /internal error|at .*\.js:\d+/);
  });

  test('--oob - with --json: one OOB line per frame on stdout, SIGTERM ends with a JSON summary', async () => {
    const live = await startLive(NS_B, ['-i', IF_B, '--sa', join(work, 'b.yaml'), '-f', 'esp', '--oob', '-'], { pre: ['--json'] });
    sendCapture(NS_A, IF_A, join(work, 'esp.pcap'));
    const t0 = Date.now();
    while (oobLines(live.stdout()).length < 4 && Date.now() - t0 < 15_000) await sleep(50);
    assert.equal(oobLines(live.stdout()).length, 4, 'OOB lines were written before the end');
    process.kill(live.child.pid!, 'SIGTERM');
    assert.equal(await waitExit(live), 0, live.stderr());
    assert.ok(oobLines(live.stdout()).every((r) => r.cryptoStatus === 'CRYPTO_SUCCESS'));
    const last = live.stderr().trim().split('\n').pop()!;
    const sum = JSON.parse(last) as { framesIn: number; interface: string; outcomes: Record<string, number> };
    assert.equal(sum.framesIn, 4);
    assert.equal(sum.interface, IF_B);
    assert.deepEqual(sum.outcomes, { CRYPTO_SUCCESS: 4 });
  });

  test('--tx: plain UDP frames captured live are encrypted; rx of the result gives them back', async () => {
    const out = join(work, 'tx-out.pcap');
    const oob = join(work, 'tx-out.jsonl');
    const live = await startLive(NS_B, ['-i', IF_B, '--tx', '--sa', join(work, 'a.yaml'), '-f', 'udp port 5001', '-c', '4', '-w', out, '--oob', oob]);
    sendCapture(NS_A, IF_A, join(work, 'plain.pcap'));
    assert.equal(await waitExit(live), 0, live.stderr());
    const recs = oobLines(readFileSync(oob, 'utf8')) as unknown as { status: string; spi: string; seq: number }[];
    assert.deepEqual(recs.map((r) => [r.status, r.spi, r.seq]), [1, 2, 3, 4].map((n) => ['encrypted', '0x00003001', n]));
    assert.deepEqual(await payloads(out), ['ESP', 'ESP', 'ESP', 'ESP']);
    const back = join(work, 'tx-back.pcap');
    must(process.execPath, [BIN, 'rx', '--quiet', '--sa', join(work, 'b.yaml'), out, '-w', back]);
    assert.deepEqual(await payloads(back), ['ipsecov2-tx-1', 'ipsecov2-tx-2', 'ipsecov2-tx-3', 'ipsecov2-tx-4']);
  });

  test('a capture filter that does not parse is a usage error (exit 2, one line)', () => {
    const r = sh('ip', ['netns', 'exec', NS_B, process.execPath, BIN, 'live', '-i', IF_B, '--sa', join(work, 'b.yaml'), '-f', 'esp and and']);
    assert.equal(r.status, 2);
    assert.match(r.err, /capture filter 'esp and and'/);
    assert.equal(r.err.trim().split('\n').filter((l) => l.startsWith('ipsecov2')).length, 1);
  });
});

describe('live without root or without cap', () => {
  test('cap missing: one line naming libpcap-dev and npm rebuild cap; other commands still work', () => {
    const env = { ...process.env, IPSECOV2_CAP_MODULE: 'ipsecov2-test-no-such-module', NO_COLOR: '1' };
    const r = spawnSync(process.execPath, [BIN, 'live', '-i', 'lo', '--sa', 'whatever.yaml'], { encoding: 'utf8', env });
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /libpcap-dev/);
    assert.match(lines[0]!, /npm rebuild cap/);
    const v = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env });
    assert.equal(v.status, 0, v.stderr);
    const c = spawnSync(process.execPath, [BIN, 'caps', '--nic', 'ndis'], { encoding: 'utf8', env });
    assert.equal(c.status, 0, c.stderr);
  });

  test('--list shows interfaces', { skip: capState.ok ? false : `the optional 'cap' package is not usable (${capState.ok ? '' : capState.reason})` }, () => {
    const r = spawnSync(process.execPath, [BIN, 'live', '--list'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ *1\. \S+/m);
    assert.match(r.stdout, /\blo\b/);
  });

  const setpriv = sh('setpriv', ['--version']).status === 0;
  const permSkip = !capState.ok ? "the optional 'cap' package is not usable" : !isRoot ? 'needs root to switch to an unprivileged user' : !setpriv ? 'setpriv (util-linux) not found' : false;
  test('no permission to capture: one line, no stack trace', { skip: permSkip }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-live-perm-'));
    try {
      chmodSync(dir, 0o755);
      const sa = join(dir, 'sa.yaml');
      writeFileSync(sa, SA_B, { mode: 0o644 });
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'live', '-i', 'lo', '--sa', sa], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 20_000 });
      assert.equal(r.status, 1, r.stderr);
      const msgs = r.stderr.trim().split('\n').filter((l) => l.startsWith('ipsecov2'));
      assert.equal(msgs.length, 1, r.stderr);
      assert.match(msgs[0]!, /no permission to capture on lo: run as root .*setcap cap_net_raw/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('LiveCaptureReader (fake cap handle)', () => {
  class FakeCap extends EventEmitter {
    closed = 0;
    buf: Buffer | null = null;
    open(): string { return 'ETHERNET'; }
    close(): boolean { this.closed++; return true; }
    packet(bytes: Buffer): void {
      bytes.copy(this.buf!);
      this.emit('packet', bytes.length, false);
    }
  }
  const make = (opts: { count?: number; maxQueued?: number } = {}): { cap: FakeCap; r: LiveCaptureReader } => {
    const cap = new FakeCap();
    cap.buf = Buffer.alloc(70000);
    const r = new LiveCaptureReader(cap as never, cap.buf, 'fake0', null, 1, 'ETHERNET', { device: 'fake0', idleMs: 20, ...opts });
    return { cap, r };
  };

  test('frames are copied out of the shared buffer, numbered, stamped in ns, batched up to max', async () => {
    const { cap, r } = make();
    const before = BigInt(Date.now()) * 1_000_000n;
    for (let i = 1; i <= 5; i++) cap.packet(Buffer.alloc(60 + i, i));
    const b1 = (await r.nextBatch(3))!;
    const b2 = (await r.nextBatch(3))!;
    assert.deepEqual(b1.map((f) => f.index), [1, 2, 3]);
    assert.deepEqual(b2.map((f) => f.index), [4, 5]);
    for (const f of [...b1, ...b2]) {
      assert.equal(f.data.length, 60 + f.index);
      assert.ok(f.data.every((x) => x === f.index), 'data kept although the shared buffer was overwritten');
      const ns = (BigInt(f.tsHi) << 32n) | BigInt(f.tsLo);
      assert.ok(ns >= before - 5_000_000n && ns < before + 60_000_000_000n);
    }
    assert.equal(r.interfaces[0]!.tsResol, 9);
    assert.equal(r.bytesRead, 61 + 62 + 63 + 64 + 65);
    assert.deepEqual(await r.nextBatch(8), [], 'idle: an empty batch after the timeout');
    r.stop();
    assert.equal(await r.nextBatch(8), null);
    assert.equal(cap.closed, 1);
  });

  test('a waiting nextBatch wakes on a packet; stop() still hands out queued frames, then null', async () => {
    const { cap, r } = make();
    const p = r.nextBatch(8);
    setTimeout(() => cap.packet(Buffer.alloc(64, 7)), 5);
    assert.equal((await p)!.length, 1);
    cap.packet(Buffer.alloc(64, 8));
    cap.packet(Buffer.alloc(64, 9));
    r.stop();
    cap.packet(Buffer.alloc(64, 10)); // after stop: ignored
    assert.deepEqual((await r.nextBatch(8))!.map((f) => f.data[0]), [8, 9]);
    assert.equal(await r.nextBatch(8), null);
  });

  test('count stops the capture; a full queue drops and counts; abort drops the queue', async () => {
    const a = make({ count: 2 });
    for (let i = 0; i < 4; i++) a.cap.packet(Buffer.alloc(64, i));
    assert.equal(a.cap.closed, 1);
    assert.equal((await a.r.nextBatch(8))!.length, 2);
    assert.equal(await a.r.nextBatch(8), null);
    const b = make({ maxQueued: 3 });
    for (let i = 0; i < 5; i++) b.cap.packet(Buffer.alloc(64, i));
    assert.equal(b.r.queueDrops, 2);
    b.r.abort();
    assert.equal(await b.r.nextBatch(8), null);
  });

  test('cap link-type names map to LINKTYPE values', () => {
    assert.equal(capLinkType('ETHERNET'), 1);
    assert.equal(capLinkType('RAW'), 101);
    assert.equal(capLinkType('LINKTYPE_LINUX_SLL'), 113);
    assert.equal(capLinkType('Unknown linktype 276'), 276);
    assert.equal(capLinkType('Unknown linktype 12'), 101);
    assert.equal(capLinkType('bogus'), null);
  });
});
