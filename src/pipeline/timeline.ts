/**
 * The SA set over the capture's timeline: the SA file's bundles, changed by its events
 * (ADD_SA / UPDATE_SA / DELETE_SA at a frame number or a time, applied by sa/table.ts), and the
 * engines' live state for each bundle (replay windows, counters), keyed by OffloadHandle.
 */
import type { SaDocument } from '../sa/model.js';
import { SaTable } from '../sa/table.js';
import { BundleState } from '../offload/sad.js';

export class SaTimeline {
  private readonly table: SaTable;
  private readonly byHandle = new Map<number, BundleState>();
  private live: BundleState[] = [];
  private nextSlot = 0;
  private readonly windowOverride: number | null;
  private readonly warnings: string[];
  private warned = 0;
  readonly hasTimeEvents: boolean;
  private readonly hasEvents: boolean;
  /** UDP ports that carry ESP besides 4500 (from udpEncapsulation of any bundle). */
  readonly natPorts: Set<number> | null;

  constructor(doc: SaDocument, windowOverride: number | null, warnings: string[]) {
    this.table = new SaTable(doc);
    this.warnings = warnings;
    this.windowOverride = windowOverride;
    this.hasEvents = doc.events.length > 0;
    this.hasTimeEvents = doc.events.some((e) => 'time' in e.at);
    const ports = new Set<number>();
    const all = [...doc.bundles, ...doc.events.flatMap((e) => (e.kind === 'add' ? [e.bundle] : []))];
    for (const b of all) if (b.udpEncapsulation) { ports.add(b.udpEncapsulation.srcPort); ports.add(b.udpEncapsulation.dstPort); }
    ports.delete(4500);
    this.natPorts = ports.size ? ports : null;
    this.sync();
  }

  /** Apply the events due at this frame. True when the bundle set or its state changed. */
  apply(frame: number, tsNs: bigint): boolean {
    if (!this.hasEvents) return false;
    const changes = this.table.applyEventsUpTo(frame, tsNs);
    if (changes.length === 0) return false;
    const w = this.table.warnings;
    for (; this.warned < w.length; this.warned++) {
      const d = w[this.warned]!;
      this.warnings.push(`${d.file}: ${d.path}: ${d.message}`);
    }
    this.sync();
    return true;
  }

  states(): BundleState[] {
    return this.live;
  }

  private sync(): void {
    const live: BundleState[] = [];
    for (const b of this.table.bundles()) {
      let s = this.byHandle.get(b.handle);
      if (!s || s.bundle !== b) {
        s = new BundleState(b, this.nextSlot++, this.windowOverride);
        this.byHandle.set(b.handle, s);
      }
      s.pushedHigh = b.sequence.high >>> 0;
      live.push(s);
    }
    this.live = live;
  }
}
