/**
 * State shared by the pcap and pcapng parsers and the reader that drives them: the interface
 * table, bounded warnings and counters. Internal to src/capture.
 */
import type { CaptureFrame, CaptureInterface, ReaderWarning } from './types.js';

/** Warnings kept before further ones are only counted (constant memory on hostile input). */
export const MAX_WARNINGS = 100;

/** Parser result: the batch is full. Positive results are "need this many bytes at pos". */
export const PARSE_FULL = 0;
/** Parser result: stop reading (fatal corruption; a warning was recorded). */
export const PARSE_STOP = -1;
/** Parser result: skip `skipBytes` bytes without buffering them, then parse on. */
export const PARSE_SKIP = -2;

/** What the reader needs from a format parser. */
export interface FormatParser {
  /** Parse complete records at input.pos into `out` until it holds `max` frames. */
  parse(out: CaptureFrame[], max: number): number;
  /** Valid after PARSE_SKIP. */
  skipBytes: number;
}

export class ReaderState {
  readonly interfaces: CaptureInterface[] = [];
  readonly warnings: ReaderWarning[] = [];
  /** Frames delivered so far (the last frame's `index`). */
  frameCount = 0;
  unknownBlocks = 0;
  skippedRecords = 0;
  suppressedWarnings = 0;
  truncated = false;

  constructor(
    readonly label: string,
    readonly maxFrameLen: number,
    readonly totalBytes: number | null,
  ) {}

  /**
   * Record a warning. Past MAX_WARNINGS only `force`d ones (end-of-input conditions, at most a
   * couple per file) are kept; the rest are counted in `suppressedWarnings`.
   */
  warn(offset: number, message: string, force = false): void {
    if (this.warnings.length < MAX_WARNINGS || force) this.warnings.push({ offset, message });
    else this.suppressedWarnings++;
  }

  /** Whether a block of `len` bytes at `offset` can be skipped rather than ending the read. */
  plausibleSkip(offset: number, len: number): boolean {
    if (this.totalBytes !== null) return offset + len <= this.totalBytes;
    return len <= 64 * 1024 * 1024;
  }
}
