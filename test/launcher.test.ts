/**
 * bin/ipsecov2 is a shell script and a JavaScript module in one file. Run as a program (as npm
 * links it, or from a shell), the shell restarts Node on the same file without
 * NODE_EXTRA_CA_CERTS, whose certificates Node 20 would otherwise parse before any JavaScript
 * runs. `node bin/ipsecov2` runs the JavaScript directly. Both must behave as the same CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { repoRoot } from './helpers/capture-util.js';

const BIN = join(repoRoot(), 'bin', 'ipsecov2');
const DEMO = join(repoRoot(), 'fixtures', 'demo');
const skip = process.platform === 'win32' ? 'needs a POSIX shell' : false;

/** The environment of a run: this test's Node first on PATH (the launcher runs `node`), no colour. */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, NO_COLOR: '1', ...extra };
}

/** Run the launcher as a program (`how` = 'exec') or with `node` in front of it ('node'). */
function run(how: 'exec' | 'node', bin: string, args: string[], extra: NodeJS.ProcessEnv = {}, input?: Buffer): SpawnSyncReturns<string> {
  const [cmd, argv] = how === 'exec' ? [bin, args] : [process.execPath, [bin, ...args]];
  return spawnSync(cmd, argv, { encoding: 'utf8', env: env(extra), input });
}

test('launcher: run as a program it starts Node without NODE_EXTRA_CA_CERTS; with node in front, Node parses it', { skip }, () => {
  const bad = { NODE_EXTRA_CA_CERTS: join(tmpdir(), 'ipsecov2-no-such-certs.pem') };
  const viaNode = run('node', BIN, ['--version'], bad);
  assert.equal(viaNode.status, 0, viaNode.stderr);
  // the precondition: Node reads the variable at start and warns about the missing file
  assert.match(viaNode.stderr, /Ignoring extra certs from/);
  const direct = run('exec', BIN, ['--version'], bad);
  assert.equal(direct.status, 0, direct.stderr);
  assert.equal(direct.stderr, '');
  assert.equal(direct.stdout, viaNode.stdout);
  assert.match(direct.stdout, /^ipsecov2 \d+\.\d+\.\d+ \(/);
});

test('launcher: through a symbolic link (as npm links it), arguments reach the CLI intact, with its exit status', { skip }, () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-launcher-'));
  try {
    const link = join(d, 'ipsecov2');
    symlinkSync(BIN, link);
    const sa = join(d, 'demo sas.yaml');
    copyFileSync(join(DEMO, 'demo-sas.yaml'), sa);
    chmodSync(sa, 0o600);
    const outs = (tag: string): string[] => [join(d, `out "${tag}" it's $HOME.pcapng`), join(d, `oob ${tag} *.jsonl`)];
    const args = (o: string[], input: string): string[] => ['rx', '--sa', sa, input, '-w', o[0]!, '--oob', o[1]!, '--quiet'];
    const a = outs('a');
    const r = run('exec', link, args(a, join(DEMO, 'demo.pcapng')));
    assert.equal(r.status, 0, r.stderr);
    const b = outs('b');
    const viaNode = run('node', BIN, args(b, join(DEMO, 'demo.pcapng')));
    assert.equal(viaNode.status, 0, viaNode.stderr);
    assert.ok(readFileSync(a[0]!).equals(readFileSync(b[0]!)));
    assert.equal(readFileSync(a[1]!, 'utf8'), readFileSync(b[1]!, 'utf8'));
    // standard input passes through the shell's exec
    const c = outs('c');
    const piped = run('exec', link, args(c, '-'), {}, readFileSync(join(DEMO, 'demo.pcapng')));
    assert.equal(piped.status, 0, piped.stderr);
    assert.ok(readFileSync(c[0]!).equals(readFileSync(a[0]!)));
    // a usage error keeps its status (2) and message
    const bad = run('exec', link, ['rx', join(d, 'x y.pcap')]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /required option '--sa <file>'/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
