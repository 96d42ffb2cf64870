/**
 * Classic pcap (draft-ietf-opsawg-pcap): header recognition, the record parser, and the
 * encoders the writer uses. A pcap file is one interface; records are a 16-byte header
 * (ts_sec, ts_usec|ts_nsec, incl_len, orig_len) and incl_len bytes of data.
 */
import type { ChunkedInput } from './input.js';
import { type FormatParser, PARSE_FULL, PARSE_STOP, type ReaderState } from './state.js';
import { secFracToUnits, TS_UNITS } from './timestamp.js';
import type { CaptureFrame, CaptureInterface } from './types.js';

export const PCAP_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;
export const PCAP_MAGIC_MICRO = 0xa1b2c3d4;
export const PCAP_MAGIC_NANO = 0xa1b23c4d;
/** Kuznetzov's "modified pcap" (extra per-record fields); recognised only to name it. */
export const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;

/** What the magic number says: byte order and resolution, or null if it is not pcap. */
export interface PcapMagic {
  le: boolean;
  nano: boolean;
}

/** Classify the first four bytes (read as little-endian). */
export function pcapMagic(first4le: number): PcapMagic | null {
  switch (first4le >>> 0) {
    case PCAP_MAGIC_MICRO:
      return { le: true, nano: false };
    case 0xd4c3b2a1:
      return { le: false, nano: false };
    case PCAP_MAGIC_NANO:
      return { le: true, nano: true };
    case 0x4d3cb2a1:
      return { le: false, nano: true };
    default:
      return null;
  }
}

/** Parser for the records after the 24-byte file header. */
export class PcapParser implements FormatParser {
  skipBytes = 0;
  private readonly le: boolean;
  private readonly unitsPerSecond: number;

  constructor(
    private readonly input: ChunkedInput,
    private readonly state: ReaderState,
    magic: PcapMagic,
  ) {
    this.le = magic.le;
    this.unitsPerSecond = magic.nano ? 1e9 : 1e6;
  }

  /**
   * Read the 24-byte header at input.pos (the caller ensured it is buffered) and register the
   * file's single interface.
   */
  readHeader(magic: PcapMagic): void {
    const inp = this.input;
    const dv = inp.dv;
    const p = inp.pos;
    const snapLen = dv.getUint32(p + 16, this.le);
    // draft-ietf-opsawg-pcap §4: LinkType is the low 16 bits; the top bits carry FCS info
    const linkType = dv.getUint32(p + 20, this.le) & 0xffff;
    const iface: CaptureInterface = {
      linkType,
      snapLen,
      name: null,
      description: null,
      tsResol: magic.nano ? 9 : 6,
      tsOffset: 0,
    };
    this.state.interfaces.push(iface);
    inp.pos = p + PCAP_HEADER_LEN;
  }

  parse(out: CaptureFrame[], max: number): number {
    const inp = this.input;
    const st = this.state;
    const le = this.le;
    const maxLen = st.maxFrameLen;
    const ups = this.unitsPerSecond;
    while (out.length < max) {
      const pos = inp.pos;
      const avail = inp.end - pos;
      if (avail < PCAP_RECORD_HEADER_LEN) return PCAP_RECORD_HEADER_LEN;
      const dv = inp.dv;
      const incl = dv.getUint32(pos + 8, le);
      if (incl > maxLen) {
        // pcap has no framing to resynchronise on: a bad length ends the read
        st.warn(
          inp.offset,
          `record at byte offset ${inp.offset} claims ${incl} captured bytes, over the limit of ${maxLen}; stopped reading`,
          true,
        );
        // Counted as unreadable: the rest of the input is lost, the run must not look complete.
        st.skippedRecords++;
        return PARSE_STOP;
      }
      const total = PCAP_RECORD_HEADER_LEN + incl;
      if (avail < total) return total;
      let orig = dv.getUint32(pos + 12, le);
      if (orig < incl) orig = incl;
      secFracToUnits(dv.getUint32(pos, le), dv.getUint32(pos + 4, le), ups);
      const start = pos + PCAP_RECORD_HEADER_LEN;
      out.push({
        index: ++st.frameCount,
        ifId: 0,
        // `>>> 0` (a no-op on these unsigned halves): a uint32 is stored as a small integer when it
        // fits, a float64 read from TS_UNITS always as a heap number (two allocations per frame)
        tsHi: TS_UNITS[0]! >>> 0,
        tsLo: TS_UNITS[1]! >>> 0,
        data: inp.view(start, incl),
        origLen: orig,
        comment: null,
        epbFlags: null,
      });
      inp.pos = pos + total;
    }
    return PARSE_FULL;
  }
}

/** Write a little-endian pcap file header at `off`; returns the offset after it. */
export function encodePcapHeader(
  buf: Buffer,
  off: number,
  nano: boolean,
  snapLen: number,
  linkType: number,
): number {
  buf.writeUInt32LE(nano ? PCAP_MAGIC_NANO : PCAP_MAGIC_MICRO, off);
  buf.writeUInt16LE(2, off + 4); // version 2.4
  buf.writeUInt16LE(4, off + 6);
  buf.writeInt32LE(0, off + 8); // thiszone: always 0 (UTC)
  buf.writeUInt32LE(0, off + 12); // sigfigs: always 0
  buf.writeUInt32LE(snapLen >>> 0, off + 16);
  buf.writeUInt32LE(linkType & 0xffff, off + 20);
  return off + PCAP_HEADER_LEN;
}

/**
 * Write one record (header + data) at `off`; returns the offset after it. `sec` is written
 * modulo 2^32 (pcap's ts_sec is unsigned 32-bit).
 */
export function encodePcapRecord(
  buf: Buffer,
  off: number,
  sec: number,
  frac: number,
  data: Uint8Array,
  origLen: number,
): number {
  const n = data.length;
  encodePcapRecordHeader(buf, off, sec, frac, n, origLen);
  buf.set(data, off + PCAP_RECORD_HEADER_LEN);
  return off + PCAP_RECORD_HEADER_LEN + n;
}

/** The 16-byte record header alone (the caller writes the `n` data bytes after it). */
export function encodePcapRecordHeader(buf: Buffer, off: number, sec: number, frac: number, n: number, origLen: number): number {
  buf.writeUInt32LE(((sec % 4294967296) + 4294967296) % 4294967296, off);
  buf.writeUInt32LE(frac >>> 0, off + 4);
  buf.writeUInt32LE(n, off + 8);
  buf.writeUInt32LE((origLen < n ? n : origLen) >>> 0, off + 12);
  return off + PCAP_RECORD_HEADER_LEN;
}
