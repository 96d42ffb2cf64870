/**
 * Shared shapes of the capture layer (readers and writers of pcap / pcapng).
 * Every other layer sees captures only through these types.
 */

/** One capture interface (a pcap file has exactly one; pcapng one per IDB). */
export interface CaptureInterface {
  /** LINKTYPE_* value (1 Ethernet, 101 raw, 228 IPv4, 229 IPv6, 113 SLL, 276 SLL2, 0 NULL ...). */
  linkType: number;
  snapLen: number;
  /** if_name option (pcapng) or null. */
  name: string | null;
  /** if_description option (pcapng) or null. */
  description: string | null;
  /**
   * if_tsresol byte as in pcapng: high bit clear = 10^-n seconds, set = 2^-n seconds.
   * pcap: 6 (micro) or 9 (nano).
   */
  tsResol: number;
  /** if_tsoffset in seconds (pcapng), 0 when absent. */
  tsOffset: number;
}

/**
 * One captured frame. `data` is a view into a chunk owned by the reader; it stays valid for as
 * long as it is referenced, unless the caller has released it with the reader's recycleBefore,
 * so callers may decrypt in place.
 */
export interface CaptureFrame {
  /** 1-based frame number: counts the frames delivered (an unreadable record is a warning, not a frame). */
  index: number;
  /** Global interface id (index into reader.interfaces). */
  ifId: number;
  /** Timestamp in units of the interface's tsResol, as two unsigned 32-bit halves. */
  tsHi: number;
  tsLo: number;
  /** A plain Uint8Array (not a Buffer): wrap it with Buffer.from(d.buffer, d.byteOffset, d.length) for Buffer methods. */
  data: Uint8Array;
  /** Original length on the wire (>= data.length). */
  origLen: number;
  /** opt_comment of the input record (pcapng), or null. */
  comment: string | null;
  /** epb_flags (pcapng) or null. */
  epbFlags: number | null;
}

export interface ReaderWarning {
  /** Byte offset in the input where the problem was found. */
  offset: number;
  message: string;
}
