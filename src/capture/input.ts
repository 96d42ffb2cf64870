/**
 * Chunked input for the capture readers: bytes arrive from a file descriptor or a stream into
 * chunks the reader allocates (1 MiB by default) and never reuses, so frames handed out as
 * `subarray` views stay valid for as long as anyone holds them, and memory stays flat (a chunk
 * is collected once its frames are dropped). A record split across two chunks is assembled by
 * copying the partial tail into the next chunk (gopacket's ReadPacketData makes the same trade:
 * fresh memory per packet batch, no reuse).
 */
import type { FileHandle } from 'node:fs/promises';

/** Where bytes come from. `read` returns 0 only at end of input. */
export interface ByteSource {
  read(target: Buffer, offset: number, length: number): Promise<number>;
  /** Discard up to n bytes; returns how many were discarded (less only at end of input). */
  skip(n: number): Promise<number>;
  close(): Promise<void>;
}

/** Read-ahead size for seekable files. */
const READ_AHEAD = 1 << 20;

/**
 * A regular file or FIFO opened by path. Seekable files are read ahead: the next block is read
 * while the caller parses the current one, so the pipeline never waits on the disk.
 */
export class FileSource implements ByteSource {
  private position = 0;
  private readonly seekable: boolean;
  private ahead: Promise<number> | null = null;
  private aheadAt = 0;
  private readonly aheadBuf: Buffer;
  private aheadOff = 0;
  private aheadLen = 0;
  constructor(
    private readonly fh: FileHandle,
    seekable: boolean,
  ) {
    this.seekable = seekable;
    this.aheadBuf = Buffer.allocUnsafeSlow(seekable ? READ_AHEAD : 0);
  }
  private prefetch(): void {
    this.aheadAt = this.position;
    this.aheadOff = 0;
    this.aheadLen = 0;
    this.ahead = this.fh.read(this.aheadBuf, 0, READ_AHEAD, this.position).then((r) => r.bytesRead);
  }
  async read(target: Buffer, offset: number, length: number): Promise<number> {
    if (!this.seekable) {
      const { bytesRead } = await this.fh.read(target, offset, length, null);
      this.position += bytesRead;
      return bytesRead;
    }
    if (this.ahead !== null) {
      const n = await this.ahead;
      this.ahead = null;
      if (this.aheadAt === this.position) { this.aheadOff = 0; this.aheadLen = n; }
      else this.aheadLen = 0;
    }
    if (this.aheadLen > this.aheadOff) {
      const n = Math.min(length, this.aheadLen - this.aheadOff);
      this.aheadBuf.copy(target, offset, this.aheadOff, this.aheadOff + n);
      this.aheadOff += n;
      this.position += n;
      if (this.aheadOff === this.aheadLen) this.prefetch();
      return n;
    }
    const { bytesRead } = await this.fh.read(target, offset, length, this.position);
    this.position += bytesRead;
    if (bytesRead > 0) this.prefetch();
    return bytesRead;
  }
  async skip(n: number): Promise<number> {
    if (this.seekable) {
      if (this.ahead !== null) { await this.ahead.catch(() => 0); this.ahead = null; }
      const buffered = this.aheadLen - this.aheadOff;
      if (n < buffered) { this.aheadOff += n; this.position += n; return n; }
      this.aheadLen = this.aheadOff = 0;
      // the caller bounds n by the file size it knows; reads past the end just return 0
      this.position += n;
      return n;
    }
    return discard(this, n);
  }
  async close(): Promise<void> {
    if (this.ahead !== null) await this.ahead.catch(() => 0);
    return this.fh.close();
  }
}

async function discard(src: ByteSource, n: number): Promise<number> {
  const scratch = Buffer.allocUnsafe(Math.min(n, 65536));
  let done = 0;
  while (done < n) {
    const got = await src.read(scratch, 0, Math.min(scratch.length, n - done));
    if (got === 0) break;
    done += got;
  }
  return done;
}

/** Any Node readable stream (stdin, a pipe) or async iterable of byte chunks. */
export class IterableSource implements ByteSource {
  private readonly it: AsyncIterator<unknown> | Iterator<unknown>;
  private pending: Uint8Array | null = null;
  private pendingPos = 0;
  private ended = false;
  constructor(src: NodeJS.ReadableStream | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>) {
    const a = src as Partial<AsyncIterable<unknown>>;
    this.it = typeof a[Symbol.asyncIterator] === 'function' ? (src as AsyncIterable<unknown>)[Symbol.asyncIterator]() : (src as Iterable<unknown>)[Symbol.iterator]();
  }
  async read(target: Buffer, offset: number, length: number): Promise<number> {
    while (this.pending === null || this.pendingPos >= this.pending.length) {
      if (this.ended) return 0;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        this.pending = null;
        return 0;
      }
      const v = r.value;
      this.pending = typeof v === 'string' ? Buffer.from(v, 'latin1') : (v as Uint8Array);
      this.pendingPos = 0;
    }
    // one copy from the stream's chunk into ours: the stream's buffers may come from a shared
    // pool, ours must be owned (frames are views into them)
    const p = this.pending;
    const n = Math.min(length, p.length - this.pendingPos);
    target.set(p.subarray(this.pendingPos, this.pendingPos + n), offset);
    this.pendingPos += n;
    return n;
  }
  skip(n: number): Promise<number> {
    return discard(this, n);
  }
  async close(): Promise<void> {
    this.ended = true;
    this.pending = null;
    if (typeof this.it.return === 'function') {
      try {
        await this.it.return();
      } catch {
        // closing an already failed stream: nothing left to release
      }
    }
  }
}

/** Smallest read worth issuing before starting a fresh chunk instead. */
const MIN_READ = 4096;

/**
 * The window of buffered, unparsed input. Parsers read `buf` between `pos` and `end` directly
 * (with `dv` for multi-byte fields) and advance `pos`; `ensure` makes more bytes available.
 */
export class ChunkedInput {
  buf: Buffer;
  dv: DataView;
  pos = 0;
  end = 0;
  /** Absolute input offset of buf[0]. */
  base = 0;
  eof = false;
  bytesRead = 0;
  private readonly chunkSize: number;

  constructor(
    private readonly source: ByteSource,
    chunkSize: number,
  ) {
    this.chunkSize = Math.max(16, chunkSize | 0);
    this.buf = Buffer.allocUnsafeSlow(0);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, 0);
  }

  /** Absolute input offset of `pos`. */
  get offset(): number {
    return this.base + this.pos;
  }

  /**
   * Make at least n bytes available at `pos` (reading as little as one source read at a time).
   * @returns false if the input ended first (whatever was there is still buffered).
   */
  async ensure(n: number): Promise<boolean> {
    while (this.end - this.pos < n) {
      if (this.eof) return false;
      const room = this.buf.length - this.end;
      if (this.buf.length - this.pos < n || room < Math.min(MIN_READ, this.chunkSize)) this.renew(n);
      const got = await this.source.read(this.buf, this.end, this.buf.length - this.end);
      if (got === 0) {
        this.eof = true;
        return false;
      }
      this.end += got;
      this.bytesRead += got;
    }
    return true;
  }

  /**
   * Start a fresh chunk holding the unparsed tail. The old chunk is left untouched: frames
   * already handed out may still point into it.
   */
  private renew(n: number): void {
    const tail = this.end - this.pos;
    const nb = Buffer.allocUnsafeSlow(Math.max(this.chunkSize, n));
    if (tail > 0) this.buf.copy(nb, 0, this.pos, this.end);
    this.base += this.pos;
    this.buf = nb;
    this.dv = new DataView(nb.buffer, nb.byteOffset, nb.length);
    this.pos = 0;
    this.end = tail;
  }

  /**
   * Advance n bytes without keeping them (a block too large to buffer).
   * @returns false if the input ended first.
   */
  async skip(n: number): Promise<boolean> {
    const have = this.end - this.pos;
    if (have >= n) {
      this.pos += n;
      return true;
    }
    this.pos = this.end;
    const want = n - have;
    const got = this.eof ? 0 : await this.source.skip(want);
    this.base += got;
    this.bytesRead += got;
    if (got < want) {
      this.eof = true;
      return false;
    }
    return true;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
