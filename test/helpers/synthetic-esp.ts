/**
 * A synthetic ESP capture for pipeline tests: Ethernet/IPv4/UDP frames to a tunnel AES-GCM SA, a
 * transport AES-CBC + HMAC-SHA-256 SA and no SA (pass-through), sealed by the tx path; then every
 * 50th frame corrupted (an ICV failure) and every 70th sent twice (a replay).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCapture, type RunOptions } from '../../src/pipeline/run.js';
import { loadSaFile } from '../../src/sa/load.js';
import type { SaDocument } from '../../src/sa/model.js';
import { buildPcap, readEspFrames } from './capture-util.js';
import { transCbcSa, tunGcmSa, writeSaFile } from './sa-yaml.js';
import { ether, ipPacket, Prng } from '../tx-helpers.js';

export interface SyntheticEsp {
  /** The SA file (outbound bundles: rx with --any-direction). */
  saFile: string;
  sa: SaDocument;
  /** The nanosecond pcap to decrypt. */
  input: string;
}

/** Rx options for `input` (anyDirection on), pcapng + OOB outputs as given. */
export function rxOptions(sa: SaDocument, input: string, output: string, oob: string | null, workers: number): RunOptions {
  return {
    path: 'rx', input, output, oob, format: 'pcapng', sa, inPlace: false, dropFailed: false, anyDirection: true, esn: 'infer',
    replayWindow: null, workers, ivSeed: null, mtu: 1500, progress: false,
  };
}

/** Write the capture (`frames` plain frames before the corruption and replays) under `dir`. */
export async function makeSyntheticEsp(dir: string, frames: number, seed = 5): Promise<SyntheticEsp> {
  const saFile = writeSaFile(join(dir, 'sa.yaml'), [tunGcmSa(), transCbcSa()]);
  const sa = loadSaFile(saFile);
  const r = new Prng(seed);
  const dsts = [Buffer.from([10, 1, 1, 9]), Buffer.from([10, 2, 2, 9]), Buffer.from([10, 9, 9, 9])];
  const plainFrames = Array.from({ length: frames }, (_, i) => ({
    sec: 1700000000 + (i >> 10), frac: i, data: ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: (i * 37) % 300, dst: dsts[i % 3]! })),
  }));
  const plain = join(dir, 'plain.pcap');
  writeFileSync(plain, buildPcap(plainFrames, { nano: true }));
  const esp = join(dir, 'esp.pcap');
  await runCapture({ ...rxOptions(sa, plain, esp, null, 0), path: 'tx', format: 'pcap', ivSeed: '0102' });
  const bad: { sec: number; frac: number; data: Buffer }[] = [];
  readEspFrames(readFileSync(esp)).forEach((f, i) => {
    if (i % 50 === 7) f.data[f.data.length - 3]! ^= 0x40;
    bad.push(f);
    if (i % 70 === 5) bad.push(f);
  });
  const input = join(dir, 'in.pcap');
  writeFileSync(input, buildPcap(bad, { nano: true }));
  return { saFile, sa, input };
}
