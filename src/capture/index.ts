/**
 * Public surface of the capture layer: streaming pcap/pcapng readers and writers.
 */
export type { CaptureFrame, CaptureInterface, ReaderWarning } from './types.js';
export {
  CaptureFormatError,
  openCapture,
  openCaptureStream,
  type CaptureReader,
  type OpenOptions,
} from './reader.js';
export {
  CaptureWriteError,
  createCaptureWriter,
  createCaptureWriterStream,
  type CaptureWriter,
  type WriterOptions,
} from './writer.js';
export { tsToIso, tsToNs } from './timestamp.js';
export * from './linktypes.js';
