/**
 * pcapng (draft-ietf-opsawg-pcapng): the block parser and the encoders the writer uses.
 *
 * Reading follows the draft's framing: every block is Block Type, Block Total Length, body,
 * Block Total Length again (§3.1), lengths are multiples of 4 (§3.1), byte order is set per
 * section by the SHB's Byte-Order Magic (§4.1). Interface ids in packet blocks are local to
 * their section (§4.2); this reader numbers interfaces globally, in file order, across sections.
 *
 * Policy for packet blocks naming an interface the section has not declared (an invalid file
 * by §4.3): the frame is kept, not dropped, so every packet record in the input is accounted
 * for; it is attached to a synthesized interface of link type LINKTYPE_USER0 (147), one per
 * section, created on first use, and a warning names the first offending block. Later layers
 * pass USER0 frames through untouched.
 */
import type { ChunkedInput } from './input.js';
import { LINKTYPE_USER0 } from './linktypes.js';
import { type FormatParser, PARSE_FULL, PARSE_SKIP, PARSE_STOP, type ReaderState } from './state.js';
import type { CaptureFrame, CaptureInterface } from './types.js';

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
/** Obsolete Packet Block (draft appendix A). */
export const BT_PB = 0x00000002;
export const BT_SPB = 0x00000003;
export const BT_NRB = 0x00000004;
export const BT_ISB = 0x00000005;
export const BT_EPB = 0x00000006;
export const BT_JOURNAL = 0x00000009;
export const BT_DSB = 0x0000000a;
export const BT_CUSTOM = 0x00000bad;
export const BT_CUSTOM_NOCOPY = 0x40000bad;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_DESCRIPTION = 3;
export const IF_TSRESOL = 9;
export const IF_TSOFFSET = 14;
export const EPB_FLAGS = 2;

/** Room allowed for options beyond maxFrameLen in a block we buffer whole. */
const OPTIONS_ALLOWANCE = 65536;
/** Unknown-block warnings kept (all are counted in unknownBlocks). */
const UNKNOWN_WARNINGS = 5;

const hex = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0');

function optString(buf: Buffer, start: number, end: number): string {
  // strings are UTF-8, not NUL-terminated (§3.5), but some writers add NULs anyway
  while (end > start && buf[end - 1] === 0) end--;
  return buf.toString('utf8', start, end);
}

export class PcapngParser implements FormatParser {
  skipBytes = 0;
  private le = true;
  /** Local interface id in the current section → global id. */
  private sectionIfs: number[] = [];
  /** Global id of this section's synthesized USER0 interface, or -1. */
  private synthetic = -1;
  private readonly maxBlockLen: number;

  constructor(
    private readonly input: ChunkedInput,
    private readonly state: ReaderState,
  ) {
    this.maxBlockLen = state.maxFrameLen + OPTIONS_ALLOWANCE;
  }

  parse(out: CaptureFrame[], max: number): number {
    const inp = this.input;
    const st = this.state;
    while (out.length < max) {
      const pos = inp.pos;
      const avail = inp.end - pos;
      if (avail < 12) return 12;
      const dv = inp.dv;
      const type = dv.getUint32(pos, this.le);
      let le = this.le;
      if (type === BT_SHB) {
        // the SHB type is a palindrome; its own byte order comes from the magic (§4.1)
        if (avail < 16) return 16;
        const bom = dv.getUint32(pos + 8, true);
        if (bom === BYTE_ORDER_MAGIC) le = true;
        else if (bom === 0x4d3c2b1a) le = false;
        else {
          st.warn(inp.offset, `section header block at byte offset ${inp.offset} has a bad byte-order magic ${hex(bom)}; stopped reading`, true);
          st.skippedRecords++; // the rest of the input is lost
          return PARSE_STOP;
        }
        const major = dv.getUint16(pos + 12, le);
        if (major !== 1) {
          // §4.1: a different major version means an incompatible format
          st.warn(inp.offset, `section at byte offset ${inp.offset} is pcapng version ${major}.${dv.getUint16(pos + 14, le)}; only 1.x is supported; stopped reading`, true);
          st.skippedRecords++; // the rest of the input is lost
          return PARSE_STOP;
        }
        this.le = le;
        this.sectionIfs = [];
        this.synthetic = -1;
      }
      const len = dv.getUint32(pos + 4, le);
      if (len < 12 || (len & 3) !== 0) {
        // §3.1: Block Total Length is a multiple of 4 and covers at least type + 2 lengths
        st.warn(inp.offset, `block at byte offset ${inp.offset} (type ${hex(type)}) has an invalid length ${len}; stopped reading`, true);
        st.skippedRecords++; // the rest of the input is lost
        return PARSE_STOP;
      }
      const wanted = type === BT_EPB || type === BT_SPB || type === BT_PB || type === BT_IDB || type === BT_SHB;
      if (!wanted || len > this.maxBlockLen) {
        if (wanted) {
          const isPacket = type === BT_EPB || type === BT_SPB || type === BT_PB;
          if (isPacket) st.skippedRecords++;
          st.warn(inp.offset, `block at byte offset ${inp.offset} (type ${hex(type)}) is ${len} bytes, over the limit of ${this.maxBlockLen}; skipped${isPacket ? ' (packet lost)' : ''}`);
          if (type === BT_IDB) this.addInterface(0xffff, 0, null, null, 6, 0);
        } else if (!isKnownOtherBlock(type)) {
          if (++st.unknownBlocks <= UNKNOWN_WARNINGS) {
            st.warn(inp.offset, `unknown block type ${hex(type)} at byte offset ${inp.offset} skipped`);
          }
        }
        if (avail >= len) {
          inp.pos = pos + len;
          continue;
        }
        if (!st.plausibleSkip(inp.offset, len)) {
          st.warn(inp.offset, `block at byte offset ${inp.offset} claims ${len} bytes, past the end of the input; stopped reading`, true);
          st.truncated = true;
          return PARSE_STOP;
        }
        this.skipBytes = len;
        return PARSE_SKIP;
      }
      if (avail < len) return len;
      const trailer = dv.getUint32(pos + len - 4, le);
      inp.pos = pos + len;
      if (trailer !== len) {
        st.warn(inp.offset - len, `block at byte offset ${inp.offset - len} (type ${hex(type)}): trailing length ${trailer} differs from leading length ${len}; skipped`);
        if (type === BT_EPB || type === BT_SPB || type === BT_PB) st.skippedRecords++;
        if (type === BT_IDB) this.addInterface(0xffff, 0, null, null, 6, 0);
        continue;
      }
      switch (type) {
        case BT_EPB:
        case BT_PB:
          this.packet(out, pos, len, type === BT_PB);
          break;
        case BT_SPB:
          this.simplePacket(out, pos, len);
          break;
        case BT_IDB:
          this.interfaceBlock(pos, len);
          break;
        default: // BT_SHB: options (shb_hardware, shb_os, shb_userappl) are not needed
          break;
      }
    }
    return PARSE_FULL;
  }

  private addInterface(linkType: number, snapLen: number, name: string | null, description: string | null, tsResol: number, tsOffset: number): void {
    this.sectionIfs.push(this.state.interfaces.length);
    this.state.interfaces.push({ linkType, snapLen, name, description, tsResol, tsOffset });
  }

  /** §4.2 Interface Description Block. */
  private interfaceBlock(pos: number, len: number): void {
    const inp = this.input;
    if (len < 20) {
      // keep the id numbering of later interfaces right even when this one is unreadable
      this.state.warn(inp.base + pos, `interface description block at byte offset ${inp.base + pos} is too short (${len} bytes)`);
      this.addInterface(0xffff, 0, null, null, 6, 0);
      return;
    }
    const dv = inp.dv;
    const le = this.le;
    const buf = inp.buf;
    let name: string | null = null;
    let description: string | null = null;
    let tsResol = 6; // §4.2 if_tsresol: absent means 10^-6
    let tsOffset = 0;
    let o = pos + 16;
    const end = pos + len - 4;
    while (o + 4 <= end) {
      const code = dv.getUint16(o, le);
      const olen = dv.getUint16(o + 2, le);
      if (code === OPT_ENDOFOPT) break;
      const vs = o + 4;
      if (vs + olen > end) {
        this.state.warn(inp.base + o, `option ${code} at byte offset ${inp.base + o} runs past its block; rest of the options ignored`);
        break;
      }
      if (code === IF_NAME) name = optString(buf, vs, vs + olen);
      else if (code === IF_DESCRIPTION) description = optString(buf, vs, vs + olen);
      else if (code === IF_TSRESOL && olen >= 1) tsResol = buf[vs];
      else if (code === IF_TSOFFSET && olen >= 8) tsOffset = Number(dv.getBigInt64(vs, le));
      o = vs + ((olen + 3) & ~3);
    }
    this.addInterface(dv.getUint16(pos + 8, le), dv.getUint32(pos + 12, le), name, description, tsResol, tsOffset);
  }

  /** Global id for a section-local interface id; see the policy in the file comment. */
  private globalIf(local: number, blockPos: number): number {
    if (local < this.sectionIfs.length) return this.sectionIfs[local];
    if (this.synthetic < 0) {
      const st = this.state;
      this.synthetic = st.interfaces.length;
      st.interfaces.push({
        linkType: LINKTYPE_USER0,
        snapLen: 0,
        name: null,
        description: 'synthesized by ipsecov2 for packets naming an undeclared interface',
        tsResol: 6,
        tsOffset: 0,
      });
      const off = this.input.base + blockPos;
      st.warn(off, `packet block at byte offset ${off} names interface ${local}, but its section declares ${this.sectionIfs.length}; such frames are kept on interface ${this.synthetic} (LINKTYPE_USER0)`);
    }
    return this.synthetic;
  }

  /** §4.3 Enhanced Packet Block, or the obsolete Packet Block (appendix A; 16-bit interface id). */
  private packet(out: CaptureFrame[], pos: number, len: number, obsolete: boolean): void {
    const inp = this.input;
    const st = this.state;
    if (len < 32) {
      st.skippedRecords++;
      st.warn(inp.base + pos, `packet block at byte offset ${inp.base + pos} is too short (${len} bytes); skipped (packet lost)`);
      return;
    }
    const dv = inp.dv;
    const le = this.le;
    const local = obsolete ? dv.getUint16(pos + 8, le) : dv.getUint32(pos + 8, le);
    const tsHi = dv.getUint32(pos + 12, le);
    const tsLo = dv.getUint32(pos + 16, le);
    let cap = dv.getUint32(pos + 20, le);
    let orig = dv.getUint32(pos + 24, le);
    if (cap > len - 32) {
      st.warn(inp.base + pos, `packet block at byte offset ${inp.base + pos}: captured length ${cap} exceeds the block; cut to ${len - 32}`);
      cap = len - 32;
    }
    if (cap > st.maxFrameLen) {
      st.skippedRecords++;
      st.warn(inp.base + pos, `packet block at byte offset ${inp.base + pos} holds ${cap} bytes, over the limit of ${st.maxFrameLen}; skipped (packet lost)`);
      return;
    }
    if (orig < cap) orig = cap;
    const start = pos + 28;
    let comment: string | null = null;
    let flags: number | null = null;
    let o = start + ((cap + 3) & ~3);
    const end = pos + len - 4;
    // options (§3.5); most packet blocks have none, so this loop is usually skipped
    while (o + 4 <= end) {
      const code = dv.getUint16(o, le);
      const olen = dv.getUint16(o + 2, le);
      if (code === OPT_ENDOFOPT) break;
      const vs = o + 4;
      if (vs + olen > end) {
        st.warn(inp.base + o, `option ${code} at byte offset ${inp.base + o} runs past its block; rest of the options ignored`);
        break;
      }
      if (code === OPT_COMMENT) {
        // several opt_comment options are allowed (§3.5); they are joined with newlines
        const c = optString(inp.buf, vs, vs + olen);
        comment = comment === null ? c : comment + '\n' + c;
      } else if (code === EPB_FLAGS && olen >= 4) {
        flags = dv.getUint32(vs, le);
      }
      o = vs + ((olen + 3) & ~3);
    }
    out.push({
      index: ++st.frameCount,
      ifId: this.globalIf(local, pos),
      tsHi,
      tsLo,
      data: inp.view(start, cap),
      origLen: orig,
      comment,
      epbFlags: flags,
    });
  }

  /**
   * §4.4 Simple Packet Block: interface 0 of the section, no timestamp (0 is reported), captured
   * length = min(original length, the interface's SnapLen, what the block holds).
   */
  private simplePacket(out: CaptureFrame[], pos: number, len: number): void {
    const inp = this.input;
    const st = this.state;
    if (len < 16) {
      st.skippedRecords++;
      st.warn(inp.base + pos, `simple packet block at byte offset ${inp.base + pos} is too short (${len} bytes); skipped (packet lost)`);
      return;
    }
    const orig = inp.dv.getUint32(pos + 8, this.le);
    const ifId = this.globalIf(0, pos);
    const snap = st.interfaces[ifId].snapLen;
    let cap = orig;
    if (snap > 0 && cap > snap) cap = snap;
    if (cap > len - 16) cap = len - 16;
    if (cap > st.maxFrameLen) {
      st.skippedRecords++;
      st.warn(inp.base + pos, `simple packet block at byte offset ${inp.base + pos} holds ${cap} bytes, over the limit of ${st.maxFrameLen}; skipped (packet lost)`);
      return;
    }
    const start = pos + 12;
    out.push({
      index: ++st.frameCount,
      ifId,
      tsHi: 0,
      tsLo: 0,
      data: inp.view(start, cap),
      origLen: orig,
      comment: null,
      epbFlags: null,
    });
  }
}

/** Block types defined by the draft that carry no packets: skipped silently, not counted. */
function isKnownOtherBlock(type: number): boolean {
  return type === BT_NRB || type === BT_ISB || type === BT_JOURNAL || type === BT_DSB || type === BT_CUSTOM || type === BT_CUSTOM_NOCOPY;
}

// ---------------------------------------------------------------------------------------------
// Encoders (little-endian output, one section)

const pad4 = (n: number): number => (n + 3) & ~3;

/** One option, padded (§3.5). Returns the offset after it. */
function putOption(buf: Buffer, off: number, code: number, value: Buffer): number {
  buf.writeUInt16LE(code, off);
  buf.writeUInt16LE(value.length, off + 2);
  value.copy(buf, off + 4);
  const end = off + 4 + value.length;
  buf.fill(0, end, off + 4 + pad4(value.length));
  return off + 4 + pad4(value.length);
}

function block(type: number, body: Buffer, options: Array<[number, Buffer]>): Buffer {
  let optLen = 0;
  for (const [, v] of options) optLen += 4 + pad4(v.length);
  if (options.length > 0) optLen += 4; // opt_endofopt
  const len = 12 + body.length + optLen;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  let o = 8 + body.length;
  for (const [code, v] of options) o = putOption(b, o, code, v);
  b.writeUInt32LE(len, len - 4);
  return b;
}

/** §4.1 Section Header Block, version 1.0, unknown section length, with shb_userappl. */
export function encodeShb(userAppl: string): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt32LE(BYTE_ORDER_MAGIC, 0);
  body.writeUInt16LE(1, 4);
  body.writeUInt16LE(0, 6);
  body.writeBigInt64LE(-1n, 8); // §4.1: -1 = section length not specified
  return block(BT_SHB, body, [[SHB_USERAPPL, Buffer.from(userAppl, 'utf8')]]);
}

/** §4.2 Interface Description Block copying link type, snaplen, name, description, tsresol, tsoffset. */
export function encodeIdb(iface: CaptureInterface): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16LE(iface.linkType & 0xffff, 0);
  body.writeUInt32LE(iface.snapLen >>> 0, 4);
  const opts: Array<[number, Buffer]> = [];
  if (iface.name !== null) opts.push([IF_NAME, Buffer.from(iface.name, 'utf8')]);
  if (iface.description !== null) opts.push([IF_DESCRIPTION, Buffer.from(iface.description, 'utf8')]);
  if (iface.tsResol !== 6) opts.push([IF_TSRESOL, Buffer.from([iface.tsResol & 0xff])]);
  if (iface.tsOffset !== 0 && Number.isFinite(iface.tsOffset)) {
    const v = Buffer.alloc(8);
    v.writeBigInt64LE(BigInt(Math.trunc(iface.tsOffset)));
    opts.push([IF_TSOFFSET, v]);
  }
  return block(BT_IDB, body, opts);
}

/** Size of an EPB with `capLen` data bytes, a comment of `commentBytes` UTF-8 bytes (-1: none), optional flags. */
export function epbSize(capLen: number, commentBytes: number, hasFlags: boolean): number {
  let n = 32 + pad4(capLen);
  if (commentBytes >= 0) n += 4 + pad4(commentBytes);
  if (hasFlags) n += 8;
  if (commentBytes >= 0 || hasFlags) n += 4;
  return n;
}

/**
 * §4.3 Enhanced Packet Block, written straight into the output buffer at `off` (the caller
 * sized it with {@link epbSize}). Returns the offset after the block.
 */
export function encodeEpb(
  buf: Buffer,
  off: number,
  size: number,
  ifId: number,
  tsHi: number,
  tsLo: number,
  data: Uint8Array,
  origLen: number,
  comment: string | null,
  commentBytes: number,
  flags: number | null,
): number {
  const cap = data.length;
  buf.writeUInt32LE(BT_EPB, off);
  buf.writeUInt32LE(size, off + 4);
  buf.writeUInt32LE(ifId, off + 8);
  buf.writeUInt32LE(tsHi >>> 0, off + 12);
  buf.writeUInt32LE(tsLo >>> 0, off + 16);
  buf.writeUInt32LE(cap, off + 20);
  buf.writeUInt32LE((origLen < cap ? cap : origLen) >>> 0, off + 24);
  buf.set(data, off + 28);
  let o = off + 28 + cap;
  const padded = off + 28 + pad4(cap);
  while (o < padded) buf[o++] = 0;
  if (comment !== null && commentBytes >= 0) {
    buf.writeUInt16LE(OPT_COMMENT, o);
    buf.writeUInt16LE(commentBytes, o + 2);
    buf.write(comment, o + 4, commentBytes, 'utf8');
    o += 4 + commentBytes;
    while (((o - off) & 3) !== 0) buf[o++] = 0;
  }
  if (flags !== null) {
    buf.writeUInt16LE(EPB_FLAGS, o);
    buf.writeUInt16LE(4, o + 2);
    buf.writeUInt32LE(flags >>> 0, o + 4);
    o += 8;
  }
  if (o !== off + size - 4) {
    buf.writeUInt32LE(0, o); // opt_endofopt
    o += 4;
  }
  buf.writeUInt32LE(size, o);
  return o + 4;
}

/**
 * A packet comment produced straight into the output buffer (no string per frame): the writer
 * asks for an upper bound of its UTF-8 size, then has it written at an offset.
 */
export interface CommentEncoder {
  /** Upper bound of the comment's size in UTF-8 bytes. */
  bound(): number;
  /** Write the comment's UTF-8 bytes at `off` (room: bound()); returns the offset after it. */
  write(buf: Buffer, off: number): number;
}

/**
 * An Enhanced Packet Block whose packet data the caller writes afterwards at `off + 28`
 * (`cap` bytes; the padding after it is written here). The comment comes from `comment`
 * (at most 65535 bytes, bound() included; the caller checks) and the buffer must have room for
 * epbSize(cap, comment.bound(), flags !== null). Returns the offset after the block.
 */
export function encodeEpbReserved(
  buf: Buffer,
  off: number,
  ifId: number,
  tsHi: number,
  tsLo: number,
  cap: number,
  origLen: number,
  comment: CommentEncoder | null,
  flags: number | null,
): number {
  u32le(buf, BT_EPB, off);
  u32le(buf, ifId, off + 8);
  u32le(buf, tsHi >>> 0, off + 12);
  u32le(buf, tsLo >>> 0, off + 16);
  u32le(buf, cap, off + 20);
  u32le(buf, (origLen < cap ? cap : origLen) >>> 0, off + 24);
  let o = off + 28 + cap;
  const padded = off + 28 + pad4(cap);
  while (o < padded) buf[o++] = 0;
  if (comment !== null) {
    const end = comment.write(buf, o + 4);
    u16le(buf, OPT_COMMENT, o);
    u16le(buf, end - o - 4, o + 2);
    o = end;
    while (((o - off) & 3) !== 0) buf[o++] = 0;
  }
  if (flags !== null) {
    u16le(buf, EPB_FLAGS, o);
    u16le(buf, 4, o + 2);
    u32le(buf, flags >>> 0, o + 4);
    o += 8;
  }
  if (comment !== null || flags !== null) {
    u32le(buf, 0, o); // opt_endofopt
    o += 4;
  }
  const size = o + 4 - off;
  u32le(buf, size, off + 4);
  u32le(buf, size, o);
  return o + 4;
}

/** Little-endian stores by bytes (no argument checks: the hot path's values are in range). */
function u32le(buf: Uint8Array, v: number, o: number): void {
  buf[o] = v;
  buf[o + 1] = v >>> 8;
  buf[o + 2] = v >>> 16;
  buf[o + 3] = v >>> 24;
}
function u16le(buf: Uint8Array, v: number, o: number): void {
  buf[o] = v;
  buf[o + 1] = v >>> 8;
}
