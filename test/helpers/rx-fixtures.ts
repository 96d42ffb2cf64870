/**
 * Helpers for the receive-path fixture tests (fixtures/rx/, made by scripts/make-rx-fixtures.py
 * with Scapy): manifest types, running one capture through the rx pipeline, reading the output
 * back, and building the expected output bytes from the manifest.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCapture, type RunOptions, type RunResult } from '../../src/pipeline/run.js';
import { openCapture } from '../../src/capture/reader.js';
import { loadSaFile } from '../../src/sa/load.js';
import type { SaDocument } from '../../src/sa/model.js';

/** fixtures/rx/ at the repository root (tests run from dist/test/). */
export const RX_DIR = fileURLToPath(new URL('../../../fixtures/rx/', import.meta.url));

export interface InPlacePatch {
  /** Byte offset from the start of the frame. */
  off: number;
  hex: string;
}

export interface RxExpectFrame {
  frame: number;
  cryptoDone: 0 | 1;
  nextCryptoDone: 0 | 1;
  saDeleteReq: 0 | 1;
  cryptoStatus: string;
  /** Bundle name; absent = not checked. */
  sa?: string;
  /** Absent = not checked. */
  replay?: 'ok' | 'duplicate' | 'too-old' | 'off';
  seqHigh?: number;
  /** L3 bytes of the host-view output; null = the output frame equals the input frame. */
  decrypted: string | null;
  ethertype?: number;
  /** Patches turning the input frame into the --in-place output (successes only). */
  inPlace?: InPlacePatch[];
  note?: string;
}

export interface RxCase {
  name: string;
  group: string;
  saFile: string;
  capture: string;
  source: string;
  tags: string[];
  /** tshark 4.0 can verify/decrypt every ESP SA of this case. */
  tshark: boolean;
  frames: RxExpectFrame[];
  notes?: string;
}

export interface RxManifest {
  generator: string;
  scapy: string;
  linkType: number;
  groups: { name: string; saFile: string; comment: string; bundles: string[] }[];
  cases: RxCase[];
}

export function loadRxManifest(): RxManifest {
  return JSON.parse(readFileSync(join(RX_DIR, 'manifest.json'), 'utf8')) as RxManifest;
}

const saCache = new Map<string, SaDocument>();
/** Load (once) an SA file of fixtures/rx/. A fresh run state is built by the pipeline per run. */
export function rxSa(saFile: string): SaDocument {
  let d = saCache.get(saFile);
  if (!d) {
    d = loadSaFile(join(RX_DIR, saFile));
    saCache.set(saFile, d);
  }
  return d;
}

/** One OOB line as written by the pipeline. */
export interface OobLine {
  frame: number;
  handle: number | null;
  sa: string | null;
  spi: string | null;
  seq: number | null;
  seqHigh: number | null;
  cryptoDone: number;
  nextCryptoDone: number;
  saDeleteReq: number;
  cryptoStatus: string;
  cryptoStatusCode: number;
  replay: string | null;
  detail: string | null;
}

export interface RxRun {
  oob: OobLine[];
  /** Output frames' captured bytes, in order. */
  out: Buffer[];
  result: RunResult;
}

/** Read every frame of a capture (captured bytes only). */
export async function readFrames(path: string): Promise<{ data: Buffer; origLen: number }[]> {
  const r = await openCapture(path);
  const frames: { data: Buffer; origLen: number }[] = [];
  try {
    for (;;) {
      const b = await r.nextBatch(256);
      if (b === null) break;
      for (const f of b) frames.push({ data: Buffer.from(f.data), origLen: f.origLen });
    }
  } finally {
    await r.close();
  }
  return frames;
}

/** Run one fixture capture through `rx` with the documented programmatic options. */
export async function runRx(c: RxCase, inPlace: boolean): Promise<RxRun> {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-rx-'));
  try {
    const output = join(dir, 'out.pcap');
    const oob = join(dir, 'oob.jsonl');
    const opts: RunOptions = {
      path: 'rx', input: join(RX_DIR, c.capture), output, oob, format: 'pcap', sa: rxSa(c.saFile),
      inPlace, dropFailed: false, anyDirection: false, esn: 'infer', replayWindow: null, workers: 0,
      ivSeed: null, mtu: 1500, progress: false,
    };
    const result = await runCapture(opts);
    const lines = readFileSync(oob, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as OobLine);
    const out = (await readFrames(output)).map((f) => f.data);
    return { oob: lines, out, result };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Expected host-view output frame: the input's Ethernet header (ethertype fixed) + decrypted L3. */
export function expectedHostFrame(input: Buffer, e: RxExpectFrame): Buffer {
  if (e.decrypted === null) return input;
  const l2 = Buffer.from(input.subarray(0, 14));
  l2.writeUInt16BE(e.ethertype ?? (input.readUInt16BE(12)), 12);
  return Buffer.concat([l2, Buffer.from(e.decrypted, 'hex')]);
}

/** Expected --in-place output frame: the input with the manifest's plaintext patches applied. */
export function expectedInPlaceFrame(input: Buffer, e: RxExpectFrame): Buffer {
  const out = Buffer.from(input);
  if (e.decrypted === null) return out;
  for (const p of e.inPlace ?? []) Buffer.from(p.hex, 'hex').copy(out, p.off);
  return out;
}

/** First differing byte of two buffers, for messages. */
export function firstDiff(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return `first difference at byte ${i} (got 0x${a[i]!.toString(16).padStart(2, '0')}, want 0x${b[i]!.toString(16).padStart(2, '0')}); lengths ${a.length} vs ${b.length}`;
  }
  return a.length === b.length ? 'equal' : `lengths differ: got ${a.length}, want ${b.length}`;
}

/** Compare one frame's OOB record with the manifest; returns problems (empty = good). */
export function checkOob(got: OobLine | undefined, e: RxExpectFrame): string[] {
  if (!got) return ['no OOB record'];
  const p: string[] = [];
  const want = (k: string, g: unknown, w: unknown): void => {
    if (g !== w) p.push(`${k}: got ${JSON.stringify(g)}, want ${JSON.stringify(w)}`);
  };
  want('frame', got.frame, e.frame);
  want('cryptoDone', got.cryptoDone, e.cryptoDone);
  want('nextCryptoDone', got.nextCryptoDone, e.nextCryptoDone);
  want('saDeleteReq', got.saDeleteReq, e.saDeleteReq);
  want('cryptoStatus', got.cryptoStatus, e.cryptoStatus);
  const codes = ['CRYPTO_SUCCESS', 'CRYPTO_GENERIC_ERROR', 'CRYPTO_TRANSPORT_AH_AUTH_FAILED', 'CRYPTO_TRANSPORT_ESP_AUTH_FAILED',
    'CRYPTO_TUNNEL_AH_AUTH_FAILED', 'CRYPTO_TUNNEL_ESP_AUTH_FAILED', 'CRYPTO_INVALID_PACKET_SYNTAX', 'CRYPTO_INVALID_PROTOCOL'];
  want('cryptoStatusCode', got.cryptoStatusCode, codes.indexOf(e.cryptoStatus));
  if (e.sa !== undefined) want('sa', got.sa, e.sa);
  if (e.replay !== undefined) want('replay', got.replay, e.replay);
  if (e.seqHigh !== undefined) want('seqHigh', got.seqHigh, e.seqHigh);
  if (e.cryptoDone === 0 && got.handle !== null) p.push(`handle: got ${got.handle}, want null for an unprocessed frame`);
  if (p.length && got.detail) p.push(`(engine detail: ${got.detail})`);
  return p;
}
