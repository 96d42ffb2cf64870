/**
 * The end-of-run summary (text form; --json prints RunStats.toJSON()).
 */
import type { RunResult } from '../pipeline/run.js';
import { linkTypeName } from '../capture/linktypes.js';
import { style } from './style.js';

function fmtCounts(m: Map<string, number>): string {
  return [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
}

export function formatSummary(path: 'rx' | 'tx', input: string, output: string, oob: string | null, res: RunResult, secs: number, replayWindow: number | null): string {
  const s = res.stats;
  const lines: string[] = [];
  const mb = (n: number): string => (n / 1e6).toFixed(1) + ' MB';
  lines.push(style.bold(`ipsecov2 ${path}: ${s.framesIn} frames (${mb(s.bytesIn)}) from ${input === '-' ? 'stdin' : input} → ${s.framesOut} frames to ${output === '-' ? 'stdout' : output}${oob ? `, OOB ${oob === '-' ? 'stdout' : oob}` : ''}`));
  if (res.outputClosedByPeer || res.oobClosedByPeer) {
    const where = (t: string): string => (t === '-' ? 'stdout' : t);
    const closed = [res.outputClosedByPeer ? `${where(output)} (the capture)` : null, res.oobClosedByPeer && oob !== null ? `${where(oob)} (the OOB lines)` : null].filter((x) => x !== null);
    lines.push(style.warn(`  ${closed.join(' and ')} closed by its reader: the output written there stopped early; the counts are of the frames processed`));
  }
  lines.push(`  outcomes: ${fmtCounts(s.outcomes.counts) || 'none'}`);
  if (s.dropped) lines.push(`  dropped (--drop-failed): ${s.dropped}`);
  if (path === 'rx' && s.replay.counts.size) {
    lines.push(`  replay (host model): ${fmtCounts(s.replay.counts)}${s.replayDrops ? ` — a receiver with ${replayWindow !== null ? `--replay-window ${replayWindow}` : 'these windows'} would drop ${s.replayDrops}` : ''}`);
  }
  for (const [sa, m] of [...s.perSa.entries()].sort()) lines.push(`  SA ${sa}: ${fmtCounts(m.counts)}`);
  lines.push(`  link types: ${s.linkTypes.counts.size === 0 ? 'none' : [...s.linkTypes.counts.entries()].map(([k, v]) => `${linkTypeName(Number(k))} ${v}`).join(', ')}`);
  if (s.workerFaults) lines.push(style.warn(`  worker faults: ${s.workerFaults} batch(es) failed twice; their frames are CRYPTO_GENERIC_ERROR`));
  if (res.skippedRecords) lines.push(style.warn(`  ${res.skippedRecords} input record(s) could not be read (see the warnings); exit status 1`));
  if (res.truncated) lines.push(style.warn('  input ended mid-record: every complete frame was processed (exit status 1)'));
  const rate = secs > 0 ? s.framesIn / secs : 0;
  lines.push(style.dim(`  ${secs.toFixed(2)} s, ${rate >= 1000 ? (rate / 1000).toFixed(1) + 'k' : rate.toFixed(0)} frames/s`));
  return lines.join('\n');
}
