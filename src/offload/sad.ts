/**
 * The security association database as the NIC holds it: inbound lookup by
 * (protocol, SPI, destination[, source]) (spec/ipsecov2.md §3.9, RFC 4303 §2.1 longest match:
 * {SPI,dst,src} → {SPI,dst} → {SPI}), and the per-member state the engines keep between frames
 * (replay window, counters, crypto slot).
 */
import type { Bundle, Prefix } from '../sa/model.js';
import type { AhParams, EspParams } from '../crypto/types.js';
import { ReplayWindow } from './replay.js';
import type { SlotDef } from './jobs.js';

/** Live state of one bundle (one OffloadHandle). */
export class BundleState {
  readonly bundle: Bundle;
  /** Crypto slot shared by the ESP and AH members. */
  readonly slot: number;
  readonly espReplay: ReplayWindow | null;
  readonly ahReplay: ReplayWindow | null;
  packets = 0;
  bytes = 0;
  /** Latched once a lifetime or sequence-space trigger fires (spec §9 item 20). */
  deleteReq = false;
  /** Outbound: next sequence number (64-bit as hi/lo). */
  txHigh: number;
  txLow: number;
  /** Pushed ESN high bits (UPDATE_SA) for `--esn pushed`. */
  pushedHigh: number;

  constructor(bundle: Bundle, slot: number, windowOverride: number | null) {
    this.bundle = bundle;
    this.slot = slot;
    const w = windowOverride ?? bundle.replayWindow;
    this.espReplay = bundle.esp ? new ReplayWindow(w, bundle.sequence.high) : null;
    this.ahReplay = bundle.ah ? new ReplayWindow(w, bundle.sequence.high) : null;
    this.txHigh = bundle.sequence.high >>> 0;
    this.txLow = bundle.sequence.next >>> 0;
    this.pushedHigh = bundle.sequence.high >>> 0;
  }

  slotDef(): SlotDef {
    const b = this.bundle;
    const esp: EspParams | null = b.esp
      ? { encryption: b.esp.encryption, encryptionKey: b.esp.encryptionKey, integrity: b.esp.integrity, integrityKey: b.esp.integrityKey, icvLength: b.esp.icvLength }
      : null;
    const ah: AhParams | null = b.ah ? { integrity: b.ah.integrity, integrityKey: b.ah.integrityKey, icvLength: b.ah.icvLength } : null;
    return { slot: this.slot, esp, ah };
  }
}

interface Entry {
  state: BundleState;
  /** Destination the SA applies to (tunnel: outer dst; transport: selector dst), null = any. */
  dst: Prefix | null;
  src: Prefix | null;
  family: 4 | 6 | 0;
}

/** Does the address at d[off..off+len) fall inside prefix `p` (same family)? */
export function prefixMatch(p: Prefix, d: Uint8Array, off: number, len: number): boolean {
  if ((p.family === 4 ? 4 : 16) !== len) return false;
  let bits = p.len;
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (p.addr[i] !== d[off + i]) return false;
  if (bits > 0) {
    const m = (0xff << (8 - bits)) & 0xff;
    if ((p.addr[i]! & m) !== (d[off + i]! & m)) return false;
  }
  return true;
}

export function exactPrefix(family: 4 | 6, addr: Buffer): Prefix {
  return { family, addr, len: family === 4 ? 32 : 128 };
}

/** One remembered IPv4 lookup: SPI (-1 = none), destination and source as 32-bit values, answer. */
class LastLookup {
  spi = -1;
  dst = 0;
  src = 0;
  res: BundleState | null = null;
}

/** Inbound lookup tables, rebuilt whenever the bundle set changes. */
export class Sad {
  private esp = new Map<number, Entry[]>();
  private ah = new Map<number, Entry[]>();

  rebuild(states: Iterable<BundleState>, anyDirection: boolean): void {
    this.esp = new Map();
    this.ah = new Map();
    this.lastEsp.spi = -1;
    this.lastAh.spi = -1;
    for (const s of states) {
      const b = s.bundle;
      if (b.direction !== 'inbound' && !anyDirection) continue;
      const dst = b.tunnel ? exactPrefix(b.tunnel.family, b.tunnel.dst) : b.selector.dst;
      const src = b.tunnel ? exactPrefix(b.tunnel.family, b.tunnel.src) : b.selector.src;
      const family = b.tunnel ? b.tunnel.family : (dst?.family ?? src?.family ?? 0);
      const e: Entry = { state: s, dst, src, family };
      if (b.esp) push(this.esp, b.esp.spi, e);
      if (b.ah) push(this.ah, b.ah.spi, e);
    }
  }

  /**
   * Most specific inbound match for (protocol, spi, dst, src) in frame bytes `d`.
   * Inbound bundles win over outbound ones (which only take part with --any-direction).
   */
  lookup(isAh: boolean, spi: number, d: Uint8Array, dstOff: number, srcOff: number, addrLen: number): BundleState | null {
    if (addrLen !== 4) return this.find(isAh, spi, d, dstOff, srcOff, addrLen);
    // IPv4: the last answer per protocol is kept (a capture is mostly runs of one flow)
    const dst = (d[dstOff]! << 24) | (d[dstOff + 1]! << 16) | (d[dstOff + 2]! << 8) | d[dstOff + 3]!;
    const src = (d[srcOff]! << 24) | (d[srcOff + 1]! << 16) | (d[srcOff + 2]! << 8) | d[srcOff + 3]!;
    const last = isAh ? this.lastAh : this.lastEsp;
    if (spi === last.spi && dst === last.dst && src === last.src) return last.res;
    const r = this.find(isAh, spi, d, dstOff, srcOff, 4);
    last.spi = spi;
    last.dst = dst;
    last.src = src;
    last.res = r;
    return r;
  }

  /** The last IPv4 lookup per protocol and its answer (reset by rebuild). */
  private readonly lastEsp = new LastLookup();
  private readonly lastAh = new LastLookup();

  private find(isAh: boolean, spi: number, d: Uint8Array, dstOff: number, srcOff: number, addrLen: number): BundleState | null {
    const list = (isAh ? this.ah : this.esp).get(spi);
    if (!list) return null;
    let best: BundleState | null = null;
    let bestScore = -1;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.family !== 0 && (e.family === 4 ? 4 : 16) !== addrLen) continue;
      let score = e.state.bundle.direction === 'inbound' ? 8 : 0;
      if (e.dst) { if (!prefixMatch(e.dst, d, dstOff, addrLen)) continue; score += 2 + e.dst.len / 256; }
      if (e.src) { if (!prefixMatch(e.src, d, srcOff, addrLen)) continue; score += 1; }
      if (score > bestScore) { best = e.state; bestScore = score; }
    }
    return best;
  }

  /** Is the SPI known for the other protocol (CRYPTO_INVALID_PROTOCOL diagnosis)? */
  other(isAh: boolean, spi: number): BundleState | null {
    const list = (isAh ? this.esp : this.ah).get(spi);
    return list && list.length ? list[0]!.state : null;
  }
}

function push(m: Map<number, Entry[]>, k: number, e: Entry): void {
  const l = m.get(k);
  if (l) l.push(e);
  else m.set(k, [e]);
}
