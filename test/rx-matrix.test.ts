/**
 * The receive path against captures made by an independent implementation (Scapy; see
 * scripts/make-rx-fixtures.py and fixtures/rx/README.md). For every case of
 * fixtures/rx/manifest.json: run rx (host view and --in-place), then compare every frame's OOB
 * record and output bytes with the manifest. Every mismatch names the case and the frame.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkOob, expectedHostFrame, expectedInPlaceFrame, firstDiff, loadRxManifest, readFrames, runRx, RX_DIR, rxSa,
  type RxCase,
} from './helpers/rx-fixtures.js';
import { join } from 'node:path';

const manifest = loadRxManifest();

async function checkCase(c: RxCase): Promise<string[]> {
  const problems: string[] = [];
  const input = (await readFrames(join(RX_DIR, c.capture))).map((f) => f.data);
  if (input.length !== c.frames.length) problems.push(`${c.name}: capture has ${input.length} frames, manifest ${c.frames.length}`);
  for (const inPlace of [false, true]) {
    const mode = inPlace ? 'in-place' : 'host view';
    const run = await runRx(c, inPlace);
    if (run.oob.length !== c.frames.length) problems.push(`${c.name} [${mode}]: ${run.oob.length} OOB records for ${c.frames.length} frames`);
    if (run.out.length !== c.frames.length) problems.push(`${c.name} [${mode}]: ${run.out.length} output frames for ${c.frames.length} frames`);
    for (const e of c.frames) {
      const i = e.frame - 1;
      const where = `${c.name} frame ${e.frame} [${mode}]${e.note ? ` (${e.note})` : ''}`;
      for (const p of checkOob(run.oob[i], e)) problems.push(`${where}: ${p}`);
      const inp = input[i];
      const got = run.out[i];
      if (!inp || !got) continue;
      if (inPlace) {
        if (got.length !== inp.length) problems.push(`${where}: --in-place changed the frame length ${inp.length} → ${got.length}`);
        const want = expectedInPlaceFrame(inp, e);
        if (!got.equals(want)) problems.push(`${where}: in-place bytes ${e.decrypted === null ? 'changed (want the input unchanged)' : 'differ from the plaintext at the ciphertext position'}: ${firstDiff(got, want)}`);
      } else {
        const want = expectedHostFrame(inp, e);
        if (!got.equals(want)) problems.push(`${where}: output ${e.decrypted === null ? 'changed (want the input unchanged)' : 'differs from the decrypted packet'}: ${firstDiff(got, want)}`);
      }
    }
  }
  return problems;
}

for (const g of manifest.groups) {
  describe(`rx fixtures: ${g.name} (${g.saFile})`, () => {
    test(`${g.saFile} loads`, () => {
      const doc = rxSa(g.saFile);
      assert.deepEqual(doc.bundles.map((b) => b.name), g.bundles);
    });
    for (const c of manifest.cases.filter((x) => x.group === g.name)) {
      test(c.name, async () => {
        const problems = await checkCase(c);
        if (problems.length) assert.fail(`${problems.length} problem(s) in case ${c.name} (${c.capture}, ${c.saFile}):\n  ${problems.join('\n  ')}`);
      });
    }
  });
}

test('rx fixtures: every group has cases and the manifest is consistent', () => {
  assert.ok(manifest.cases.length > 100);
  for (const c of manifest.cases) {
    assert.ok(manifest.groups.some((g) => g.name === c.group && g.saFile === c.saFile), `${c.name}: unknown group`);
    c.frames.forEach((f, i) => assert.equal(f.frame, i + 1, `${c.name}: frame numbers`));
  }
});
