/**
 * The progress line on stderr (only when stderr is a TTY): frames, MB, rate, ETA when the input
 * size is known.
 */
import type { CaptureReader } from '../capture/reader.js';

export class Progress {
  private readonly reader: CaptureReader;
  private readonly start = Date.now();
  private last = 0;
  frames = 0;
  private shown = false;

  constructor(reader: CaptureReader) {
    this.reader = reader;
  }

  tick(frames?: number): void {
    if (frames !== undefined) this.frames = frames;
    const now = Date.now();
    if (now - this.last < 250) return;
    this.last = now;
    const secs = (now - this.start) / 1000;
    const mb = this.reader.bytesRead / 1e6;
    const rate = secs > 0 ? mb / secs : 0;
    const fps = secs > 0 ? this.frames / secs : 0;
    let line = `${this.frames} frames, ${mb.toFixed(1)} MB, ${(fps / 1000).toFixed(1)}k frames/s, ${rate.toFixed(1)} MB/s`;
    const total = this.reader.totalBytes;
    if (total) {
      const pct = (100 * this.reader.bytesRead) / total;
      const eta = rate > 0 ? (total / 1e6 - mb) / rate : 0;
      line += `, ${pct.toFixed(0)}%, ETA ${eta.toFixed(0)} s`;
    }
    process.stderr.write(`\r\x1b[K${line}`);
    this.shown = true;
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}
