/**
 * The plan of one rx frame's output for the addon's writer (native/ipsecov2_native.c emitBatch,
 * NativeEmit): Int32 fields, P_FIELDS per frame. Values up to 2^32 - 1 are stored as their 32
 * bits. Filled by RxOobEncoder.planText (the OOB text fields) and RxEmitter (the rest).
 */
/** Output interface id (EPB interface_id). */
export const P_IF = 0;
/** Timestamp halves, in the interface's units. */
export const P_TS_HI = 1;
export const P_TS_LO = 2;
/** Captured length of the output frame = P_HDR_LEN + P_PAY_LEN. */
export const P_CAP = 3;
/** Original length on the wire (>= P_CAP). */
export const P_ORIG = 4;
/** OOB `frame`. */
export const P_FRAME = 5;
/** The timestamp's nine fraction digits as a number. */
export const P_FRAC = 6;
/** The timestamp up to its fraction ("…T12:34:56."), in the arena. */
export const P_PRE_OFF = 7;
export const P_PRE_LEN = 8;
/** Text piece: `","path":"rx",…,"seq":`. */
export const P_SA_JSON = 9;
/** `seq` (when not null) and `seqHigh` (when not null); P_FLAGS says which are null. */
export const P_SEQ = 10;
export const P_FLAGS = 11;
export const P_SEQ_HIGH = 12;
/** Text piece: the JSON line from `,"cryptoDone"` to its newline. */
export const P_TAIL = 13;
/** Text pieces of the pcapng comment: up to the sequence number, and the replay part. */
export const P_SA_COMMENT = 14;
export const P_REPLAY = 15;
/** The output frame's bytes before the payload (L2 and IP header, fixed), in the arena. */
export const P_HDR_OFF = 16;
export const P_HDR_LEN = 17;
/** The payload (decrypted) in the job data. */
export const P_PAY_OFF = 18;
export const P_PAY_LEN = 19;
/**
 * The bytes of the job data the frame's EPB may take when built in place around its payload
 * (NativeEmit.emitInPlace): its job's region with the room left before and after it.
 */
export const P_ROOM_LO = 20;
export const P_ROOM_HI = 21;
export const P_FIELDS = 22;

/** P_FLAGS: seq is null; seqHigh is null; the comment has no sequence number (no SPI). */
export const F_SEQ_NULL = 1;
export const F_SEQ_HIGH_NULL = 2;
export const F_NO_COMMENT_SEQ = 4;
