/**
 * The bench's floor program (bench/floor.c, bench/floor.ts): a minimal C implementation of one
 * frame shape that must write the same pcapng and OOB bytes as `ipsecov2 rx` on the bench's
 * AES-GCM captures, or its time is not a bound of the same work. Checked here on captures made
 * as the bench makes them (bench/captures.ts, then the tool's tx path): 1400 B payloads, and
 * 64 B payloads over a change of the second (the OOB line's date is cached per second). Also an
 * independent check of the decrypted output's bytes: a second implementation, in C, that shares
 * none of the tool's code.
 *
 * Needs a C compiler and OpenSSL's headers (libssl-dev); without them the tests skip, unless
 * IPSECOV2_REQUIRE_FLOOR=1 (CI) makes that a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GCM_KEY as KEY, SA_YAML as SA, writePlain } from '../bench/captures.js';
import { buildFloor, firstDifference, runFloor } from '../bench/floor.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin', 'ipsecov2');
const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-floor-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const floorBin = join(dir, 'floor');
const why = buildFloor(floorBin);
if (why !== null && process.env.IPSECOV2_REQUIRE_FLOOR === '1') throw new Error(`IPSECOV2_REQUIRE_FLOOR=1 but the floor program did not build: ${why}`);
const skip = why === null ? false : `the floor program did not build (${why}): needs a C compiler and libssl-dev`;
const saFile = join(dir, 'sas.yaml');
writeFileSync(saFile, SA);
chmodSync(saFile, 0o600);

/** An ESP capture of `frames` frames with `payload`-byte payloads, made as the bench makes its own. */
function espCapture(name: string, frames: number, payload: number): string {
  const plain = join(dir, `${name}.plain.pcap`);
  const esp = join(dir, `${name}.esp.pcap`);
  writePlain(plain, frames, payload, 0);
  const r = spawnSync(BIN, ['tx', '--sa', saFile, plain, '-w', esp, '--iv-seed', '00112233', '--quiet', '--workers', '0'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return esp;
}

/** ipsecov2 rx and the floor on `esp`: their outputs must be the same bytes. */
function compare(esp: string, frames: number): void {
  const out = join(dir, 'tool.pcapng');
  const oob = join(dir, 'tool.jsonl');
  const r = spawnSync(BIN, ['rx', '--sa', saFile, '--any-direction', esp, '-w', out, '--oob', oob, '--quiet'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const f = runFloor(floorBin, esp, join(dir, 'floor.pcapng'), join(dir, 'floor.jsonl'), KEY, 0xc001, 'gcm');
  assert.equal(f.frames, frames);
  assert.equal(firstDifference(out, join(dir, 'floor.pcapng')), -1, 'pcapng output differs');
  assert.equal(firstDifference(oob, join(dir, 'floor.jsonl')), -1, 'OOB output differs');
  assert.equal(readFileSync(oob, 'utf8').split('\n').filter((l) => l.includes('"CRYPTO_SUCCESS"')).length, frames);
}

test('the floor writes the same bytes as ipsecov2 rx: 1400 B payloads', { skip }, () => {
  compare(espCapture('big', 3000, 1400), 3000);
});

test('the floor writes the same bytes as ipsecov2 rx: 64 B payloads, across a change of the second', { skip }, () => {
  // the bench's timestamps move to the next second every 100000 frames
  compare(espCapture('small', 100300, 64), 100300);
});

test('the floor stops on what it does not model, and firstDifference finds a changed byte', { skip }, () => {
  const esp = espCapture('bad', 20, 200);
  const bytes = readFileSync(esp);
  // frame 10's last byte (its ICV): 24-byte file header, then 16 + caplen per record
  let o = 24;
  for (let i = 0; i < 9; i++) o += 16 + bytes.readUInt32LE(o + 8);
  const bad = Buffer.from(bytes);
  bad[o + 16 + bad.readUInt32LE(o + 8) - 1]! ^= 1;
  const badFile = join(dir, 'bad-icv.pcap');
  writeFileSync(badFile, bad);
  assert.throws(() => runFloor(floorBin, badFile, join(dir, 'f.pcapng'), join(dir, 'f.jsonl'), KEY, 0xc001, 'gcm'), /an ICV that does not verify/);
  assert.throws(() => runFloor(floorBin, esp, join(dir, 'f.pcapng'), join(dir, 'f.jsonl'), KEY, 0xc002, 'gcm'), /another SPI/);
  assert.throws(() => runFloor(floorBin, esp, join(dir, 'f.pcapng'), join(dir, 'f.jsonl'), KEY.replace(/^00/, '01'), 0xc001, 'gcm'), /an ICV that does not verify/);
  assert.equal(firstDifference(esp, esp), -1);
  assert.equal(firstDifference(esp, badFile), o + 16 + bytes.readUInt32LE(o + 8) - 1);
  const short = join(dir, 'short.pcap');
  writeFileSync(short, bytes.subarray(0, bytes.length - 5));
  assert.equal(firstDifference(esp, short), bytes.length - 5);
  assert.throws(() => runFloor(floorBin, short, join(dir, 'f.pcapng'), join(dir, 'f.jsonl'), KEY, 0xc001, 'gcm'), /truncated record/);
});
