/**
 * The SA-file subcommands as plain functions (the lead wires them into commander):
 * `sa check`, `caps`, `sa import`, `sa export`. Each prints to stdout/stderr and resolves to
 * the exit code (0 done, 1 bad input or SA file, 2 usage). User mistakes print a message,
 * never a stack trace.
 */

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { outputPlace } from '../capture/tmpfiles.js';
import { fingerprint, formatCaps, formatSaCheck } from '../sa/check.js';
import { exportSa } from '../sa/export.js';
import { importSa } from '../sa/import.js';
import type { ImportFormat } from '../sa/import.js';
import { SaFileError, formatDiagnostic, loadSaFile, parseSaText } from '../sa/load.js';
import type { SaDocument } from '../sa/model.js';
import { profileFromName } from '../sa/nic.js';

/** Where output goes (tests pass collectors). */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Standard input, read when a file argument is "-". */
  stdin?: () => string;
}

const defaultIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stdin: () => readFileSync(0, 'utf8'),
};

/** Common options. */
export interface SaCommandOptions {
  io?: Io;
  env?: NodeJS.ProcessEnv;
  quiet?: boolean;
}

function fail(io: Io, e: unknown): number {
  if (e instanceof SaFileError) {
    io.stderr(e.message + '\n');
    return 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.message === 'string' && (err.code || err instanceof Error)) {
    io.stderr(`ipsecov2: ${err.message}\n`);
    return 1;
  }
  throw e;
}

/** Write a file holding keys: mode 0600, via a temporary name so no half-written file remains. */
function writePrivate(target: string, text: string): void {
  const place = outputPlace(target);
  if (place.direct) {
    // /dev/stdout, a FIFO: written in place; renaming a file onto it would replace the device
    writeFileSync(place.path, text);
    return;
  }
  const tmp = `${place.path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, place.path);
}

/** A JSON view of the document without key material (lengths and fingerprints only). */
export function saCheckJson(doc: SaDocument): object {
  const key = (k: Buffer): { length: number; sha256: string } | null => (k.length ? { length: k.length, sha256: fingerprint(k) } : null);
  return {
    file: doc.file,
    nic: doc.nic,
    bundles: doc.bundles.map((b) => ({
      handle: b.handle,
      name: b.name,
      direction: b.direction,
      mode: b.mode,
      over: b.over,
      esn: b.esn,
      replayWindow: b.replayWindow,
      sequence: b.sequence,
      udpEncapsulation: b.udpEncapsulation,
      esp: b.esp && { spi: b.esp.spi, encryption: b.esp.encryption, integrity: b.esp.integrity, icvLength: b.esp.icvLength, encryptionKey: key(b.esp.encryptionKey), integrityKey: key(b.esp.integrityKey) },
      ah: b.ah && { spi: b.ah.spi, integrity: b.ah.integrity, icvLength: b.ah.icvLength, integrityKey: key(b.ah.integrityKey) },
      offloaded: b.offloaded,
      notOffloadedReason: b.notOffloadedReason,
    })),
    events: doc.events.length,
    warnings: doc.warnings.map(formatDiagnostic),
  };
}

/** `ipsecov2 sa check SA_FILE [--nic PROFILE] [--json]`: validate and report. */
export async function saCheck(file: string, opts: SaCommandOptions & { nic?: string; json?: boolean } = {}): Promise<number> {
  const io = opts.io ?? defaultIo;
  try {
    const doc = loadSaFile(file, { env: opts.env, nicOverride: opts.nic });
    if (opts.json) io.stdout(JSON.stringify(saCheckJson(doc), null, 2) + '\n');
    else if (!opts.quiet) io.stdout(formatSaCheck(doc));
    return 0;
  } catch (e) {
    return fail(io, e);
  }
}

/** `ipsecov2 caps [--sa SA_FILE | --nic PROFILE] [--json]`: the NDIS_IPSEC_OFFLOAD_V2 report. */
export async function caps(opts: SaCommandOptions & { sa?: string; nic?: string; json?: boolean } = {}): Promise<number> {
  const io = opts.io ?? defaultIo;
  if (opts.sa !== undefined && opts.nic !== undefined) {
    io.stderr('ipsecov2 caps: give --sa SA_FILE or --nic PROFILE, not both\n');
    return 2;
  }
  try {
    let nic;
    if (opts.sa !== undefined) nic = loadSaFile(opts.sa, { env: opts.env }).nic;
    else {
      try {
        nic = profileFromName(opts.nic ?? 'full');
      } catch (e) {
        io.stderr(`ipsecov2 caps: --nic: ${(e as Error).message}\n`);
        return 2;
      }
    }
    io.stdout(formatCaps(nic, !!opts.json));
    return 0;
  } catch (e) {
    return fail(io, e);
  }
}

const IMPORT_FORMATS: readonly ImportFormat[] = ['xfrm', 'wireshark', 'strongswan'];

/**
 * `ipsecov2 sa import --from FORMAT FILE [-w SA_FILE]`: write an SA file (stdout without -w).
 * The result is loaded once as a check; problems are printed as warnings.
 */
export async function saImport(from: string, file: string, out?: string, opts: SaCommandOptions = {}): Promise<number> {
  const io = opts.io ?? defaultIo;
  if (!(IMPORT_FORMATS as readonly string[]).includes(from)) {
    io.stderr(`ipsecov2 sa import: --from must be one of ${IMPORT_FORMATS.join(', ')}\n`);
    return 2;
  }
  try {
    const text = file === '-' ? (io.stdin ?? defaultIo.stdin!)() : readFileSync(file, 'utf8');
    const { yaml, warnings } = importSa(from as ImportFormat, text, file === '-' ? '<stdin>' : file);
    for (const w of warnings) io.stderr(`warning: ${w}\n`);
    try {
      parseSaText(yaml, out ?? '<imported>', { env: {} });
    } catch (e) {
      if (!(e instanceof SaFileError)) throw e;
      io.stderr(`warning: the imported SA file does not load as is; fix these before use:\n${e.message}\n`);
    }
    if (out && out !== '-') writePrivate(out, yaml);
    else io.stdout(yaml);
    return warnings.some((w) => w.endsWith('no SA could be imported')) ? 1 : 0;
  } catch (e) {
    return fail(io, e);
  }
}

/** `ipsecov2 sa export --to wireshark SA_FILE [-w OUT]`: an esp_sa file (stdout without -w). */
export async function saExport(file: string, to: string, out?: string, opts: SaCommandOptions = {}): Promise<number> {
  const io = opts.io ?? defaultIo;
  if (to !== 'wireshark') {
    io.stderr('ipsecov2 sa export: --to must be wireshark\n');
    return 2;
  }
  try {
    const doc = loadSaFile(file, { env: opts.env });
    const text = exportSa(doc, 'wireshark');
    for (const line of text.split('\n')) if (line.startsWith('# skipped/changed: ')) io.stderr(`warning: ${line.slice(19)}\n`);
    if (out && out !== '-') writePrivate(out, text);
    else io.stdout(text);
    return 0;
  } catch (e) {
    return fail(io, e);
  }
}
