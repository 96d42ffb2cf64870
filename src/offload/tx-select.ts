/**
 * Outbound SA selection for the send path: which outbound bundle's traffic selector (ADD_SA
 * source/destination address+mask, protocol, ports; spec/sa-file.md `selector`) takes a plain
 * packet. Rebuilt whenever the bundle set changes; the per-packet lookup allocates nothing.
 *
 * Precedence (the tool's choice; NDIS leaves selection to the host's SPD, RFC 4301 §4.4.1 orders
 * it by the administrator): the MOST SPECIFIC matching selector wins, compared as
 *   1. longer destination prefix (absent = /0),
 *   2. then longer source prefix,
 *   3. then protocol given (over "any"),
 *   4. then more ports given (srcPort, dstPort);
 * equal specificity: the bundle that comes FIRST in the SA file wins (then bundles added by
 * events, in event order). Inbound bundles never take part; bundles that are not offloaded do
 * (their packets are reported `not-offloaded`).
 */
import type { Bundle, Prefix } from '../sa/model.js';
import { prefixMatch, type BundleState } from './sad.js';

interface Rule {
  state: BundleState;
  src: Prefix | null;
  dst: Prefix | null;
  /** 4, 6, or 0 = either family. */
  family: 0 | 4 | 6;
  protocol: number;
  srcPort: number;
  dstPort: number;
  score: number;
}

/** Specificity as one number (see the module comment): dst length, src length, protocol, ports. */
function specificity(b: Bundle): number {
  const s = b.selector;
  const ports = (s.srcPort !== null ? 1 : 0) + (s.dstPort !== null ? 1 : 0);
  return (((s.dst ? s.dst.len : 0) * 129 + (s.src ? s.src.len : 0)) * 2 + (s.protocol !== null ? 1 : 0)) * 3 + ports;
}

export class TxSelector {
  private rules: Rule[] = [];
  private readonly byName = new Map<string, BundleState>();

  /**
   * Rebuild from the live bundles. `rank` gives each bundle name its position in the SA file
   * (bundles added by events after them, in event order); the tie-break follows it.
   */
  rebuild(states: Iterable<BundleState>, rank: ReadonlyMap<string, number>): void {
    const rules: Rule[] = [];
    this.byName.clear();
    for (const st of states) {
      const b = st.bundle;
      if (b.direction !== 'outbound') continue;
      this.byName.set(b.name, st);
      const s = b.selector;
      rules.push({
        state: st,
        src: s.src,
        dst: s.dst,
        family: s.src ? s.src.family : s.dst ? s.dst.family : 0,
        protocol: s.protocol ?? -1,
        srcPort: s.srcPort ?? -1,
        dstPort: s.dstPort ?? -1,
        score: specificity(b),
      });
    }
    // Stable sort: file order, so that on equal specificity the first rule seen wins.
    const r = (x: Rule): number => rank.get(x.state.bundle.name) ?? Number.MAX_SAFE_INTEGER;
    rules.sort((a, b) => r(a) - r(b));
    this.rules = rules;
  }

  /** The live outbound bundle named `name` (the tunnel of a transport-over-tunnel bundle). */
  named(name: string): BundleState | null {
    return this.byName.get(name) ?? null;
  }

  /**
   * Most specific outbound bundle for a packet: addresses in `d` at srcOff/dstOff (family
   * `version`), upper protocol `proto`, ports or -1 when the packet has none (not TCP/UDP/SCTP,
   * a non-first fragment, or cut short — then only selectors without ports match).
   */
  lookup(version: number, d: Uint8Array, srcOff: number, dstOff: number, proto: number, srcPort: number, dstPort: number): BundleState | null {
    const rules = this.rules;
    let best: Rule | null = null;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.family !== 0 && r.family !== version) continue;
      if (r.protocol >= 0 && r.protocol !== proto) continue;
      if (r.srcPort >= 0 && r.srcPort !== srcPort) continue;
      if (r.dstPort >= 0 && r.dstPort !== dstPort) continue;
      if (r.dst && !prefixMatch(r.dst, d, dstOff, version === 4 ? 4 : 16)) continue;
      if (r.src && !prefixMatch(r.src, d, srcOff, version === 4 ? 4 : 16)) continue;
      // Strictly greater: on a tie the earlier bundle (file order) keeps the packet.
      if (best === null || r.score > best.score) best = r;
    }
    return best ? best.state : null;
  }
}
