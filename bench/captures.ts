/**
 * The bench's plain captures (Ethernet/IPv4/UDP to 10.1.<net>.7, timestamps 10 µs apart from
 * 1700000000 s, the second changing every 100000 frames), which its tx path turns into ESP
 * captures, and the SAs it uses. Shared by the bench and the tests that run its tools on small
 * captures.
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';

export const GCM_KEY = '000102030405060708090a0b0c0d0e0f11223344';
export const CBC_KEY = '101112131415161718191a1b1c1d1e1f';
export const SHA1_KEY = '202122232425262728292a2b2c2d2e2f30313233';

/** The bench's SA file: its tx path makes the ESP captures with it (gcm to 10.1.0.x, cbc to 10.1.1.x, heavy to 10.1.2.x), its rx rows read them with it. */
export const SA_YAML = `version: 1
sas:
  - name: gcm
    direction: outbound
    mode: tunnel
    selector: { dst: 10.1.0.0/24 }
    tunnel: { src: 192.0.2.2, dst: 192.0.2.1 }
    esp: { spi: 0x0000c001, encryption: aes-gcm-128, encryptionKey: "${GCM_KEY}" }
  - name: cbc
    direction: outbound
    mode: tunnel
    selector: { dst: 10.1.1.0/24 }
    tunnel: { src: 192.0.2.2, dst: 192.0.2.1 }
    esp: { spi: 0x0000c002, encryption: aes-cbc-128, encryptionKey: "${CBC_KEY}", integrity: hmac-sha1-96, integrityKey: "${SHA1_KEY}" }
  - name: heavy
    direction: outbound
    mode: tunnel
    selector: { dst: 10.1.2.0/24 }
    tunnel: { src: 192.0.2.2, dst: 192.0.2.1 }
    esp: { spi: 0x0000c003, encryption: 3des-cbc, encryptionKey: "${CBC_KEY}2021222324252627", integrity: hmac-sha512-256, integrityKey: "${SHA1_KEY.repeat(4).slice(0, 128)}" }
`;

/** pcap global header (little-endian, microseconds, Ethernet). */
export function pcapHeader(snaplen: number): Buffer {
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(snaplen, 16);
  gh.writeUInt32LE(1, 20);
  return gh;
}

/** Frame i's pcap record header at o (its frame: `flen` bytes). */
function putRecordHeader(block: Buffer, o: number, i: number, flen: number): void {
  block.writeUInt32LE(1700000000 + Math.floor(i / 100000), o);
  block.writeUInt32LE((i % 100000) * 10, o + 4);
  block.writeUInt32LE(flen, o + 8);
  block.writeUInt32LE(flen, o + 12);
}

/** An Ethernet/IPv4/UDP frame's headers at f, for `payload` bytes to 10.1.<net>.7 (IP id and checksum: putIpId). */
function putHeaders(block: Buffer, f: number, payload: number, net: number): void {
  block.writeUInt16BE(0x0800, f + 12);
  const ip = f + 14;
  block[ip] = 0x45;
  block.writeUInt16BE(20 + 8 + payload, ip + 2);
  block[ip + 8] = 64;
  block[ip + 9] = 17;
  block.set([10, 2, 0, 5], ip + 12);
  block.set([10, 1, net, 7], ip + 16);
  block.writeUInt16BE(40000, ip + 20);
  block.writeUInt16BE(5001, ip + 22);
  block.writeUInt16BE(8 + payload, ip + 24);
}

/** IP id `id` and the header checksum of the IPv4 header at ip. */
function putIpId(block: Buffer, ip: number, id: number): void {
  block.writeUInt16BE(id & 0xffff, ip + 4);
  block[ip + 10] = 0;
  block[ip + 11] = 0;
  let s = 0;
  for (let j = 0; j < 20; j += 2) s += (block[ip + j]! << 8) | block[ip + j + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  block.writeUInt16BE(~s & 0xffff, ip + 10);
}

/** writePlain's frames, with payloads alternating between 1400 bytes and 20..44 (payload MIXED). */
export function writeMixed(path: string, frames: number, net: number): void {
  const fd = openSync(path + '.tmp', 'w');
  writeSync(fd, pcapHeader(262144));
  const block = Buffer.alloc(4 << 20);
  let o = 0;
  for (let i = 0; i < frames; i++) {
    const payload = i % 2 === 0 ? 1400 : 20 + (i % 7) * 4;
    const flen = 14 + 20 + 8 + payload;
    if (o + 16 + flen > block.length) { writeSync(fd, block, 0, o); o = 0; }
    putRecordHeader(block, o, i, flen);
    block.fill(0, o + 16, o + 16 + flen);
    putHeaders(block, o + 16, payload, net);
    putIpId(block, o + 16 + 14, i);
    o += 16 + flen;
  }
  writeSync(fd, block, 0, o);
  closeSync(fd);
  renameSync(path + '.tmp', path);
}

/** Write a pcap of Ethernet/IPv4/UDP frames with `payload` bytes to 10.1.<net>.7. */
export function writePlain(path: string, frames: number, payload: number, net: number): void {
  const fd = openSync(path + '.tmp', 'w');
  writeSync(fd, pcapHeader(262144));
  const flen = 14 + 20 + 8 + payload;
  const rec = 16 + flen;
  const per = Math.max(1, Math.floor((4 << 20) / rec));
  const block = Buffer.alloc(per * rec);
  for (let k = 0; k < per; k++) {
    putHeaders(block, k * rec + 16, payload, net);
    for (let i = 0; i < payload; i++) block[k * rec + 16 + 14 + 28 + i] = i & 0xff;
  }
  let n = 0;
  while (n < frames) {
    const m = Math.min(per, frames - n);
    for (let k = 0; k < m; k++) {
      putRecordHeader(block, k * rec, n + k, flen);
      putIpId(block, k * rec + 16 + 14, n + k);
    }
    writeSync(fd, block, 0, m * rec);
    n += m;
  }
  closeSync(fd);
  renameSync(path + '.tmp', path);
}
