/**
 * The live SA bundle set of the emulated NIC, changed by the SA file's events exactly as
 * OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA / _UPDATE_SA / _DELETE_SA would change it
 * (spec/ipsecov2.md §3.1, §3.6–3.8): handles are never reused, DELETE_SA frees capacity,
 * UPDATE_SA sets the ESN high-order bits of one member and fails with
 * NDIS_STATUS_INVALID_PARAMETER for an unknown bundle/SPI or a bundle without ESN.
 */

import { hex32 } from './bundle.js';
import type { Bundle, Diagnostic, NicProfile, SaDocument, SaEvent } from './model.js';
import { capabilityReason, capacityReason } from './nic.js';

/** STATUS_INVALID_PARAMETER as NDIS reports it (ndis.h). */
export const NDIS_STATUS_INVALID_PARAMETER = 0xc000000d;

/** What one applied event changed; the engine rebuilds its lookups from these. */
export type SaChange =
  | { kind: 'add'; event: SaEvent; bundle: Bundle }
  | { kind: 'delete'; event: SaEvent; bundle: Bundle }
  | { kind: 'update'; event: SaEvent; bundle: Bundle; member: 'esp' | 'ah'; spi: number; high: number }
  | { kind: 'rejected'; event: SaEvent; op: 'ADD_SA' | 'UPDATE_SA' | 'DELETE_SA'; status: 'NDIS_STATUS_INVALID_PARAMETER'; statusCode: number; diagnostic: Diagnostic };

function copyBundle(b: Bundle): Bundle {
  return { ...b, sequence: { ...b.sequence }, lifetime: { ...b.lifetime } };
}

/**
 * Holds the live bundles. Bundles are copied from the document (the table mutates
 * `sequence.high`, `offloaded`), so one SaDocument can feed several runs.
 */
export class SaTable {
  readonly nic: NicProfile;
  /** Runtime warnings (failed UPDATE_SA/DELETE_SA, refused ADD_SA), in the order they happened. */
  readonly warnings: Diagnostic[] = [];
  private readonly file: string;
  private readonly live = new Map<number, Bundle>();
  private readonly usedHandles = new Set<number>();
  private nextHandle: number;
  /** Events not applied yet, with their index in the file. */
  private pending: { event: SaEvent; index: number }[];

  constructor(doc: SaDocument) {
    this.nic = doc.nic;
    this.file = doc.file;
    for (const b of doc.bundles) {
      this.live.set(b.handle, copyBundle(b));
      this.usedHandles.add(b.handle);
    }
    this.nextHandle = Math.max(0, ...this.usedHandles) + 1;
    this.pending = doc.events.map((event, index) => ({ event, index }));
  }

  /** Live bundles in handle order. */
  bundles(): Bundle[] {
    return [...this.live.values()].sort((a, b) => a.handle - b.handle);
  }

  byHandle(handle: number): Bundle | undefined {
    return this.live.get(handle);
  }

  byName(name: string): Bundle | undefined {
    for (const b of this.live.values()) if (b.name === name) return b;
    return undefined;
  }

  /** Number of live bundles the NIC has offloaded (what counts against saCapacity). */
  offloadedCount(): number {
    let n = 0;
    for (const b of this.live.values()) if (b.offloaded) n++;
    return n;
  }

  /** Events still waiting. */
  pendingCount(): number {
    return this.pending.length;
  }

  /**
   * Apply, in file order, every pending event that is due before frame `frameNumber` (1-based)
   * with timestamp `tsNs` is processed: `{ frame: N }` when N ≤ frameNumber, `{ time }` when
   * time ≤ tsNs. Call it before each frame with non-decreasing arguments.
   */
  applyEventsUpTo(frameNumber: number, tsNs: bigint): SaChange[] {
    if (this.pending.length === 0) return [];
    const changes: SaChange[] = [];
    const rest: { event: SaEvent; index: number }[] = [];
    for (const p of this.pending) {
      const at = p.event.at;
      const due = 'frame' in at ? at.frame <= frameNumber : at.ns <= tsNs;
      if (due) changes.push(this.apply(p.event, p.index, frameNumber));
      else rest.push(p);
    }
    this.pending = rest;
    return changes;
  }

  private reject(event: SaEvent, index: number, frame: number, op: 'ADD_SA' | 'UPDATE_SA' | 'DELETE_SA', why: string): SaChange {
    const diagnostic: Diagnostic = {
      level: 'warning',
      file: this.file,
      path: `events[${index}]`,
      line: null,
      col: null,
      message: `frame ${frame}: ${op} failed: ${why} → NDIS_STATUS_INVALID_PARAMETER (0x${NDIS_STATUS_INVALID_PARAMETER.toString(16).toUpperCase()})`,
    };
    this.warnings.push(diagnostic);
    return { kind: 'rejected', event, op, status: 'NDIS_STATUS_INVALID_PARAMETER', statusCode: NDIS_STATUS_INVALID_PARAMETER, diagnostic };
  }

  private note(index: number, frame: number, message: string): void {
    this.warnings.push({ level: 'warning', file: this.file, path: `events[${index}]`, line: null, col: null, message: `frame ${frame}: ${message}` });
  }

  private apply(event: SaEvent, index: number, frame: number): SaChange {
    if (event.kind === 'add') {
      const b = copyBundle(event.bundle);
      if (this.byName(b.name)) return this.reject(event, index, frame, 'ADD_SA', `a live bundle is already named "${b.name}"`);
      // §3.8: handles are non-zero, increasing and never reused within a run.
      if (this.usedHandles.has(b.handle) || b.handle === 0) b.handle = this.nextHandle;
      this.usedHandles.add(b.handle);
      this.nextHandle = Math.max(this.nextHandle, b.handle + 1);
      let reason = capabilityReason(b, this.nic);
      if (!reason && this.offloadedCount() >= this.nic.saCapacity) reason = capacityReason(this.nic);
      b.offloaded = reason === null;
      b.notOffloadedReason = reason;
      if (reason) this.note(index, frame, `ADD_SA "${b.name}" (handle ${b.handle}) not offloaded: ${reason}`);
      this.live.set(b.handle, b);
      return { kind: 'add', event, bundle: b };
    }
    const b = this.byName(event.sa);
    if (event.kind === 'delete') {
      if (!b) return this.reject(event, index, frame, 'DELETE_SA', `no live bundle named "${event.sa}"`);
      this.live.delete(b.handle);
      return { kind: 'delete', event, bundle: b };
    }
    if (!b) return this.reject(event, index, frame, 'UPDATE_SA', `no live bundle named "${event.sa}"`);
    const label = `"${b.name}" (handle ${b.handle})`;
    let member: 'esp' | 'ah';
    if (event.spi === null) member = b.esp ? 'esp' : 'ah';
    else if (b.esp?.spi === event.spi) member = 'esp';
    else if (b.ah?.spi === event.spi) member = 'ah';
    else return this.reject(event, index, frame, 'UPDATE_SA', `bundle ${label} has no SA with SPI ${hex32(event.spi)}`);
    if (!b.offloaded) return this.reject(event, index, frame, 'UPDATE_SA', `bundle ${label} is not offloaded`);
    if (!b.esn) return this.reject(event, index, frame, 'UPDATE_SA', `bundle ${label} does not use ESN`);
    if (!this.nic.esn) return this.reject(event, index, frame, 'UPDATE_SA', 'the NIC does not support ESN (esn is false)');
    b.sequence.high = event.high;
    return { kind: 'update', event, bundle: b, member, spi: b[member]!.spi, high: event.high };
  }
}
