/**
 * The inputs of a CLI test run: the fuzz corpus as a pcap capture and its SA file (mode 0600, so
 * no permission warning), written into `dir`.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureBytes, corpus, FUZZ_SA_YAML } from '../fuzz/lib.js';

export async function writeCorpusInputs(dir: string): Promise<{ sa: string; input: string }> {
  const sa = join(dir, 'sas.yaml');
  writeFileSync(sa, FUZZ_SA_YAML);
  chmodSync(sa, 0o600);
  const input = join(dir, 'in.pcap');
  writeFileSync(input, await captureBytes(corpus(), 'pcap'));
  return { sa, input };
}
