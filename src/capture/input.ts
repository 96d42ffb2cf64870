/**
 * Chunked input for the capture readers: bytes arrive from a file descriptor or a stream into
 * chunks the reader allocates (1 MiB by default), so frames handed out as `subarray` views stay
 * valid for as long as anyone holds them, and memory stays flat (a chunk is collected once its
 * frames are dropped). A record split across two chunks is assembled by copying the partial tail
 * into the next chunk. The one exception to "never reused": a caller that says it is done with
 * the frames before a given one (recycleBefore) lets regular-file chunks take later input.
 *
 * Regular files are read ahead by ChunkedInput itself: while the caller parses one chunk, the
 * next few are already being read, straight into their own memory at a small headroom offset,
 * so switching chunks costs one copy of the partial record, not of the whole chunk. Standard
 * input read straight from its descriptor (a pipe, a regular file) gets one read ahead instead:
 * its next read is issued as soon as the last one is in, into the rest of the current chunk.
 */
import { read as fsRead } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { fdReadable, fdWatcher, type FdWatcher } from '../crypto/native.js';
import { sharedChunk } from './shared-memory.js';

/** Where bytes come from. `read` returns 0 only at end of input. */
export interface ByteSource {
  read(target: Buffer, offset: number, length: number): Promise<number>;
  /**
   * Regular files: reads at explicit positions (0 only at or past the end). ChunkedInput then
   * reads ahead by itself and never calls read/skip.
   */
  readAt?(target: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Discard up to n bytes; returns how many were discarded (less only at end of input). */
  skip(n: number): Promise<number>;
  /**
   * Sequential reads that may be issued before their bytes are wanted (ChunkedInput keeps one in
   * flight): a source whose close() does not wait for a read in flight.
   */
  readonly readsAhead?: boolean;
  /**
   * Stop waiting for input (a stop requested before the capture began): a read waiting for
   * bytes, and every later one, returns 0 (or fails). close() still releases the source.
   */
  abort?(): void;
  /**
   * Sources that can wait for ever (a pipe): true while a read is parked waiting for bytes, and
   * `onWait` (set by ChunkedInput) is called each time one starts to wait.
   */
  readonly waiting?: boolean;
  onWait?: (() => void) | null;
  close(): Promise<void>;
}

/**
 * A regular file or FIFO opened by path. Regular files are read at explicit positions
 * (`readAt`), which lets ChunkedInput read ahead into its next chunk.
 */
export class FileSource implements ByteSource {
  private position = 0;
  readonly readAt: ((target: Buffer, offset: number, length: number, position: number) => Promise<number>) | undefined;
  constructor(
    private readonly fh: FileHandle,
    seekable: boolean,
  ) {
    this.readAt = seekable ? (target, offset, length, position) => this.fh.read(target, offset, length, position).then((r) => r.bytesRead) : undefined;
  }
  async read(target: Buffer, offset: number, length: number): Promise<number> {
    const { bytesRead } = await this.fh.read(target, offset, length, this.readAt ? this.position : null);
    this.position += bytesRead;
    return bytesRead;
  }
  async skip(n: number): Promise<number> {
    // a regular file: the caller bounds n by the file size it knows; reads past the end return 0
    if (this.readAt) { this.position += n; return n; }
    return discard(this, n);
  }
  close(): Promise<void> {
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

/** An FdSource was made for fd 0 (process.stdin is then not used). */
let stdinDirect = false;

/** Standard input is read from its descriptor (FdSource): process.stdin was never made. */
export function stdinReadDirectly(): boolean {
  return stdinDirect;
}

/**
 * A pipe read from its descriptor: standard input when it is a pipe or a regular file, or a FIFO
 * given by path. Each read goes straight into the reader's chunk, up to the whole chunk (a pipe
 * gives what it holds), instead of 64 KiB stream chunks copied once more (stdin) or 64 KiB reads
 * (a FIFO's FileHandle before). Reads are sequential (position null).
 * A read is issued only once the descriptor is readable (the addon's poll() without waiting): a
 * read waiting in libuv's thread pool for a quiet pipe would keep the process from exiting, even
 * through process.exit(), until the pipe's writer writes or closes. Until then the read is parked
 * on the addon's event-loop watcher (timers of 1, 2, 4, 8 ms where none can be made), which
 * abort() and close() end at once (a run that stopped early: an interrupt, a broken capture).
 * Needs the addon (`usable`). close() calls `release` (a FIFO's FileHandle closes; standard
 * input stays open: it is the process's).
 */
export class FdSource implements ByteSource {
  readonly readsAhead = true;
  private closed = false;
  constructor(
    private readonly fd = 0,
    private readonly release: (() => Promise<void>) | null = null,
  ) {
    if (fd === 0) stdinDirect = true;
  }

  /** The addon can tell whether a read would wait (Linux). */
  static usable(fd = 0): boolean {
    return fdReadable(fd) !== null;
  }

  /** A read is parked waiting for bytes. */
  waiting = false;
  onWait: (() => void) | null = null;

  read(target: Buffer, offset: number, length: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let wait = 0;
      const attempt = (): void => {
        this.waiting = false;
        if (this.closed) { resolve(0); return; }
        if (fdReadable(this.fd) === false) { park(); return; }
        fsRead(this.fd, target, offset, length, null, (e, n) => {
          // a non-blocking descriptor (a FIFO, or made so by the watcher) with nothing after all
          if (e && e.code === 'EAGAIN') park();
          else if (e) reject(e);
          else resolve(n);
        });
      };
      /** Wait until the descriptor is readable, then attempt again. */
      const park = (): void => {
        this.waiting = true;
        if (wait === 0) this.onWait?.();
        if (this.waitReadable(attempt)) return;
        // no watcher: look again in 1, 2, 4, 8, 8 … ms
        wait = wait === 0 ? 1 : Math.min(wait * 2, 8);
        setTimeout(attempt, wait);
      };
      attempt();
    });
  }

  /** The event-loop watcher (made at the first wait), false: none could be made. */
  private watcher: FdWatcher | null | false = null;
  /** What to call when the descriptor is readable (the waiting read's next attempt). */
  private onReady: (() => void) | null = null;

  /**
   * Call `then` when the descriptor is readable, through the event loop (no timer while the pipe
   * is quiet, no delay when bytes come); false when there is no watcher (no addon, not Linux).
   */
  private waitReadable(then: () => void): boolean {
    if (this.watcher === null) {
      this.watcher = fdWatcher(this.fd, () => {
        const f = this.onReady;
        this.onReady = null;
        f?.();
      }) ?? false;
    }
    if (this.watcher === false || !this.watcher.start()) return false;
    this.onReady = then;
    return true;
  }

  skip(n: number): Promise<number> {
    return discard(this, n);
  }

  abort(): void {
    this.closed = true;
    this.stopWaiting();
  }

  close(): Promise<void> {
    this.closed = true;
    this.stopWaiting();
    return this.release ? this.release() : Promise.resolve();
  }

  /** Stop watching; a read waiting for bytes returns 0 now (none is in libuv's thread pool). */
  private stopWaiting(): void {
    if (this.watcher) this.watcher.close();
    this.watcher = false;
    const f = this.onReady;
    this.onReady = null;
    f?.();
  }
}

/** Any Node readable stream (stdin, a pipe) or async iterable of byte chunks. */
export class IterableSource implements ByteSource {
  private readonly it: AsyncIterator<unknown> | Iterator<unknown>;
  private pending: Uint8Array | null = null;
  private pendingPos = 0;
  private ended = false;
  /** The stream, when the source is one (abort destroys it). */
  private readonly stream: { destroy(): void } | null;
  constructor(src: NodeJS.ReadableStream | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>) {
    const d = src as Partial<{ destroy(): void }>;
    this.stream = typeof d.destroy === 'function' ? (src as unknown as { destroy(): void }) : null;
    const a = src as Partial<AsyncIterable<unknown>>;
    this.it = typeof a[Symbol.asyncIterator] === 'function' ? (src as AsyncIterable<unknown>)[Symbol.asyncIterator]() : (src as Iterable<unknown>)[Symbol.iterator]();
  }
  /** The stream has had nothing for a turn of the event loop while a read waits. */
  waiting = false;
  onWait: (() => void) | null = null;
  private readonly markWaiting = (): void => {
    this.waiting = true;
    this.onWait?.();
  };

  async read(target: Buffer, offset: number, length: number): Promise<number> {
    while (this.pending === null || this.pendingPos >= this.pending.length) {
      if (this.ended) return 0;
      const next = this.it.next();
      // data the stream holds comes in a few microtasks; none after a turn of the loop: waiting
      const t = this.onWait !== null ? setImmediate(this.markWaiting) : null;
      let r: IteratorResult<unknown>;
      try {
        r = await next;
      } finally {
        if (t !== null) clearImmediate(t);
        this.waiting = false;
      }
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
  abort(): void {
    // a stream's iterator waiting for data fails once the stream is destroyed (an async
    // generator's return() would wait for that next() to finish first)
    this.stream?.destroy();
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

/** Chunk reads kept in flight ahead of the parser (regular files). */
const READ_AHEAD = 3;
/** Chunks kept for reuse until the caller releases their frames (ChunkedInput.retire). */
const MAX_RETIRED = 16;

interface AheadRead {
  p: Promise<number>;
  buf: Buffer;
  /** File position of the read. */
  at: number;
}

/** Smallest read worth issuing before starting a fresh chunk instead. */
const MIN_READ = 4096;
/**
 * Read-ahead chunks start this far in, so the partial record left at the end of the previous
 * chunk can be copied in front of the new bytes (longer tails take a merged buffer).
 */
const HEADROOM = 1 << 16;

/**
 * A chunk of input. Standard-size chunks are shared memory (shared-memory.ts), so a crypto worker
 * reads a frame's bytes where the reader put them instead of the main thread copying them into the
 * batch it sends; they are allocated a few times per run and then reused (recycleBefore). A larger
 * one (a record longer than the headroom) is used once: plain memory, so no worker ever holds a
 * handle to it (jobs copy from it), and it goes with this thread's garbage collector alone.
 */
function chunkBuffer(n: number, std: number): Buffer {
  return n === std ? sharedChunk(n) : Buffer.allocUnsafeSlow(n);
}

/**
 * The window of buffered, unparsed input. Parsers read `buf` between `pos` and `end` directly
 * (with `dv` for multi-byte fields) and advance `pos`; `ensure` makes more bytes available.
 */
export class ChunkedInput {
  buf: Buffer;
  dv: DataView;
  /** `buf`'s memory, kept (`.buffer` is a C++ getter: not once per frame). */
  private ab: ArrayBuffer;
  private abOff = 0;
  pos = 0;
  end = 0;
  /** Absolute input offset of buf[0]. */
  base = 0;
  eof = false;
  bytesRead = 0;
  private readonly chunkSize: number;
  /** HEADROOM, or less for small chunk sizes. */
  private readonly headroom: number;
  /**
   * Read-ahead (positional sources only): the next chunks being read, in file order, each with
   * its bytes at the headroom. Several, so that a read queued behind output writes in libuv's
   * thread pool is still done before the parser needs it.
   */
  private readonly ahead: AheadRead[] = [];
  /** Source position of the next read-ahead. */
  private filePos = 0;
  /**
   * Chunks the parser has left, oldest first: frames handed out may still point into them until
   * the caller says they are done ({@link recycleBefore}); then standard-size ones are reused.
   */
  private readonly retired: Buffer[] = [];
  private readonly spare: Buffer[] = [];
  /**
   * Sources that read ahead (ByteSource.readsAhead): the read issued into `buf[end..]` before its
   * bytes were asked for, and what it got once in (-1 while in flight).
   */
  private early: Promise<number> | null = null;
  private earlyGot = -1;
  /** ensure() is waiting on the source. */
  private blocked = false;
  private stallCb: (() => void) | null = null;
  /** The source started waiting: a stall if ensure() is waiting on it. */
  private readonly sourceWaits = (): void => {
    if (this.blocked) this.stallCb?.();
  };

  /**
   * Called when the parser needs bytes and the source is waiting for them (a quiet pipe): the
   * pipeline then finishes the frames it holds instead of keeping them until more input comes.
   * Only sources that can wait for ever report it (FdSource, IterableSource).
   */
  set onStall(f: (() => void) | null) {
    this.stallCb = f;
    if (this.source.onWait !== undefined) this.source.onWait = f === null ? null : this.sourceWaits;
  }

  /** The source can stall (onStall may be called). */
  get canStall(): boolean {
    return this.source.onWait !== undefined;
  }

  constructor(
    private readonly source: ByteSource,
    chunkSize: number,
  ) {
    this.chunkSize = Math.max(16, chunkSize | 0);
    this.headroom = Math.min(HEADROOM, this.chunkSize);
    this.buf = Buffer.allocUnsafeSlow(0);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, 0);
    this.ab = this.buf.buffer as ArrayBuffer;
  }

  /** Make `b` the current chunk (its DataView and memory with it). */
  private setBuf(b: Buffer): void {
    this.buf = b;
    this.dv = new DataView(b.buffer, b.byteOffset, b.length);
    this.ab = b.buffer as ArrayBuffer;
    this.abOff = b.byteOffset;
  }

  /**
   * `buf[start, start + len)` as a plain Uint8Array sharing its memory (a frame's bytes), made
   * straight from the chunk's ArrayBuffer. Not a Buffer: Buffer#subarray goes through the species
   * constructor (~75-110 ns a view here), and a subclass of Uint8Array with Buffer.prototype in
   * its chain (what frames were until the thirteenth session) through the generic construct stub;
   * the plain constructor is inlined by TurboFan. 64 B frames, 200k: 0.443 -> 0.420 s.
   */
  view(start: number, len: number): Uint8Array {
    return new Uint8Array(this.ab, this.abOff + start, len);
  }

  /** Keep READ_AHEAD chunk reads in flight (positional sources). */
  private fill(): void {
    while (this.ahead.length < READ_AHEAD) {
      const nb = this.spare.pop() ?? chunkBuffer(this.headroom + this.chunkSize, this.headroom + this.chunkSize);
      const at = this.filePos;
      const p = this.source.readAt!(nb, this.headroom, this.chunkSize, at);
      p.catch(() => undefined); // awaited later (or at close): not an unhandled rejection meanwhile
      this.ahead.push({ p, buf: nb, at });
      this.filePos = at + this.chunkSize;
    }
  }

  /** Drop the reads in flight (their bytes are not wanted); resume reading at `pos`. */
  private async cancelAhead(pos: number): Promise<void> {
    for (const a of this.ahead.splice(0)) {
      await a.p.catch(() => 0);
      this.spare.push(a.buf);
    }
    this.filePos = pos;
  }

  /** Take the next read-ahead chunk as the current one, keeping the unparsed tail in front of it. */
  private async advance(): Promise<void> {
    if (this.ahead.length === 0) this.fill();
    const a = this.ahead.shift()!;
    const got = await a.p;
    const nb = a.buf;
    if (got === 0) {
      this.eof = true;
      this.spare.push(nb);
      await this.cancelAhead(a.at);
      return;
    }
    // A short read before the end: the reads queued after it start at the wrong place.
    if (got < this.chunkSize) await this.cancelAhead(a.at + got);
    this.bytesRead += got;
    const tail = this.end - this.pos;
    const old = this.buf;
    if (tail <= this.headroom) {
      const at = this.headroom - tail;
      if (tail > 0) this.buf.copy(nb, at, this.pos, this.end);
      this.base += this.pos - at;
      this.setBuf(nb);
      this.pos = at;
      this.end = this.headroom + got;
    } else {
      // a record longer than the headroom: one merged buffer
      const m = chunkBuffer(Math.max(this.chunkSize, tail + got), this.headroom + this.chunkSize);
      this.buf.copy(m, 0, this.pos, this.end);
      nb.copy(m, tail, this.headroom, this.headroom + got);
      this.spare.push(nb);
      this.base += this.pos;
      this.setBuf(m);
      this.pos = 0;
      this.end = tail + got;
    }
    if (old.length > 0) this.retire(old);
    this.fill();
  }

  /**
   * Keep a chunk the parser has left for reuse. At most MAX_RETIRED: a reader whose caller never
   * calls recycleBefore must not hold every chunk of the input (the oldest are left to the garbage
   * collector, which frees them once no frame points into them).
   */
  private retire(b: Buffer): void {
    this.retired.push(b);
    if (this.retired.length > MAX_RETIRED) this.retired.shift();
  }

  /**
   * The caller is done with every frame read before `live` (the oldest frame it still holds; null:
   * none): the chunks before the one `live` points into are reused for later reads. Without
   * calls, chunks are left to the garbage collector.
   */
  recycleBefore(live: Uint8Array | null): void {
    const r = this.retired;
    const ab = live === null ? null : live.buffer;
    let n = r.length;
    // in the current chunk (or nothing held): every retired chunk is free; else those before its
    if (ab !== null && ab !== this.ab) {
      n = 0;
      while (n < r.length && r[n]!.buffer !== ab) n++;
      // not kept (retire() let it go): older than every kept chunk, so none of them is free
      if (n === r.length) n = 0;
    }
    for (const b of r.splice(0, n)) if (b.length === this.headroom + this.chunkSize && this.spare.length < READ_AHEAD + 2) this.spare.push(b);
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
    if (this.source.readAt !== undefined) {
      while (this.end - this.pos < n) {
        if (this.eof) return false;
        await this.advance();
      }
      return true;
    }
    while (this.end - this.pos < n) {
      if (this.early !== null) {
        // the read issued early may have parked before the parser came to need it
        this.blocked = true;
        if (this.source.waiting === true) this.stallCb?.();
        try {
          await this.takeEarly();
        } finally {
          this.blocked = false;
        }
        continue;
      }
      if (this.eof) return false;
      const room = this.buf.length - this.end;
      if (this.buf.length - this.pos < n || room < Math.min(MIN_READ, this.chunkSize)) this.renew(n);
      // a read that parks says so (onWait, sourceWaits)
      this.blocked = true;
      let got: number;
      try {
        got = await this.source.read(this.buf, this.end, this.buf.length - this.end);
      } finally {
        this.blocked = false;
      }
      if (got === 0) {
        this.eof = true;
        return false;
      }
      this.end += got;
      this.bytesRead += got;
    }
    this.readEarly();
    return true;
  }

  /**
   * Sources that read ahead: issue the next read into the rest of the current chunk now, so that
   * its bytes (a pipe's whole content, up to the chunk) are in by the time the parser wants them.
   * Never while one is in flight; the chunk is not replaced until it is in (ensure, skip).
   */
  private readEarly(): void {
    if (this.source.readsAhead !== true || this.early !== null || this.eof) return;
    const room = this.buf.length - this.end;
    if (room < Math.min(MIN_READ, this.chunkSize)) return;
    const p = this.source.read(this.buf, this.end, room);
    this.early = p;
    this.earlyGot = -1;
    p.then((n) => { if (this.early === p) this.earlyGot = n; }, () => { if (this.early === p) this.earlyGot = 0; });
  }

  /** The read issued early is in: its bytes are at `end` (or the input ended). */
  private async takeEarly(): Promise<void> {
    const p = this.early!;
    this.early = null;
    const got = await p;
    if (got === 0) {
      this.eof = true;
      return;
    }
    this.end += got;
    this.bytesRead += got;
  }

  /**
   * More input can be had without waiting for the source: a read issued early is in (bytes or
   * the end). The reader then parses on instead of handing out a short batch.
   */
  get moreReady(): boolean {
    return this.early !== null && this.earlyGot >= 0;
  }

  /**
   * Start a fresh chunk holding the unparsed tail. The old chunk is left untouched: frames
   * already handed out may still point into it.
   */
  private renew(n: number): void {
    const tail = this.end - this.pos;
    // a standard-size chunk, reused once every frame in it is done (recycleBefore), as with
    // read-ahead: fresh chunks would wait for the garbage collector (and a worker's copy of the
    // shared memory for its own), which let a 2 GB stream through stdin reach 240 MB of RSS
    const std = this.headroom + this.chunkSize;
    const nb = (n <= std ? this.spare.pop() : undefined) ?? chunkBuffer(Math.max(std, n), std);
    if (tail > 0) this.buf.copy(nb, 0, this.pos, this.end);
    if (this.buf.length > 0) this.retire(this.buf);
    this.base += this.pos;
    this.setBuf(nb);
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
    if (this.early !== null) {
      await this.takeEarly();
      return this.skip(n);
    }
    this.pos = this.end;
    let want = n - have;
    if (this.source.readAt !== undefined) {
      if (this.eof) return false;
      // a regular file: drop what the read-ahead holds of the skipped bytes, keep the rest
      while (this.ahead.length > 0) {
        const a = this.ahead.shift()!;
        const got = await a.p;
        if (got > want) {
          if (got < this.chunkSize) await this.cancelAhead(a.at + got);
          this.bytesRead += got;
          this.base += this.end + want - (this.headroom + want);
          if (this.buf.length > 0) this.retire(this.buf);
          this.setBuf(a.buf);
          this.pos = this.headroom + want;
          this.end = this.headroom + got;
          this.fill();
          return true;
        }
        this.spare.push(a.buf);
        this.bytesRead += got;
        this.base += got;
        want -= got;
        if (got < this.chunkSize) {
          // the end of the file (or a short read): resume right after it
          await this.cancelAhead(a.at + got);
          break;
        }
      }
      // like a seek (nothing is read ahead now): the caller bounds n by the file size; reading
      // past the end gives 0 later
      this.filePos += want;
      this.base += want;
      this.bytesRead += want;
      return true;
    }
    const got = this.eof ? 0 : await this.source.skip(want);
    this.base += got;
    this.bytesRead += got;
    if (got < want) {
      this.eof = true;
      return false;
    }
    return true;
  }

  async close(): Promise<void> {
    for (const a of this.ahead.splice(0)) await a.p.catch(() => 0);
    // a read issued early may wait on a quiet pipe for ever: not waited for (readsAhead sources)
    if (this.early !== null) this.early.catch(() => 0);
    this.early = null;
    return this.source.close();
  }
}
