/**
 * Anti-replay window and ESN inference (RFC 4303 §3.4.3, Appendix A2): boundary cases derived
 * from the pseudo-code (there are no published vectors, spec/ipsecov2.md §8 item 12).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayWindow } from '../src/offload/replay.js';

test('replay: in order, duplicate, too old, inside the window', () => {
  const w = new ReplayWindow(64, 0);
  for (let s = 1; s <= 100; s++) {
    assert.equal(w.check(0, s), 'ok');
    w.update(0, s);
  }
  assert.equal(w.check(0, 100), 'duplicate');
  assert.equal(w.check(0, 37), 'duplicate');
  assert.equal(w.check(0, 36), 'too-old'); // 100 - 36 = 64 ≥ W
  assert.equal(w.check(0, 150), 'ok');
});

test('replay: out-of-order arrivals inside the window are accepted once', () => {
  const w = new ReplayWindow(32, 0);
  w.update(0, 10);
  assert.equal(w.check(0, 5), 'ok');
  w.update(0, 5);
  assert.equal(w.check(0, 5), 'duplicate');
  w.update(0, 40); // right edge jumps by 30: 10 still inside (40-10=30 < 32)
  assert.equal(w.check(0, 10), 'duplicate');
  assert.equal(w.check(0, 9), 'ok');
  assert.equal(w.check(0, 8), 'too-old');
});

test('replay: window off reports off and never rejects', () => {
  const w = new ReplayWindow(0, 0);
  assert.equal(w.check(0, 5), 'off');
  w.update(0, 5);
  assert.equal(w.check(0, 5), 'off');
});

test('replay: sequence number 0 is never valid', () => {
  assert.equal(new ReplayWindow(64, 0).check(0, 0), 'too-old');
});

test('ESN inference case A: window within one subspace, wrap to Th + 1', () => {
  const w = new ReplayWindow(64, 0);
  // Prime the estimate at Tl = 0xFFFFFFF0.
  assert.equal(w.inferHigh(0xfffffff0), 0);
  // A small Seql after the wrap belongs to the next subspace.
  assert.equal(w.inferHigh(5), 1);
  // A late packet from just before the wrap: Case B now (Tl = 5 < W - 1) → Th - 1.
  assert.equal(w.inferHigh(0xfffffff8), 0);
  assert.equal(w.inferHigh(6), 1);
});

test('ESN inference boundaries: Tl = W-2, W-1, W', () => {
  const at = (tl: number): ReplayWindow => {
    const w = new ReplayWindow(64, 0);
    w.ph = 3; // estimate T = (3, tl)
    w.pl = tl;
    return w;
  };
  for (const tl of [62, 63, 64]) {
    const low = (tl - 64 + 1) >>> 0;
    // Seql at the left edge: current subspace (Case A) or the previous one (Case B).
    const h = at(tl).inferHigh(low);
    if (tl >= 63) assert.equal(h, 3, `Tl=${tl} at edge`);
    else assert.equal(h, 2, `Tl=${tl} at edge (previous subspace)`);
    const hb = at(tl).inferHigh((low - 1) >>> 0);
    if (tl === 63) assert.equal(hb, 3, 'Tl=63: the window starts at 0, nothing is below it');
    else if (tl > 63) assert.equal(hb, 4, `Tl=${tl} below edge → next subspace`);
    else assert.equal(hb, 3, `Tl=${tl} below edge`);
  }
});

test('ESN inference never goes back before the SA file\'s sequence.high', () => {
  const w = new ReplayWindow(64, 5);
  assert.equal(w.inferHigh(0xfffffff0), 5, 'first packet near the top of subspace 5');
  assert.equal(w.inferHigh(3), 6, 'then the wrap');
  assert.equal(w.inferHigh(0xfffffff8), 5, 'a late packet from before the wrap');
});

test('ESN: 64-bit window across the 2^32 boundary', () => {
  const w = new ReplayWindow(64, 0);
  w.update(0, 0xfffffffe);
  w.update(0, 0xffffffff);
  assert.equal(w.check(1, 0), 'ok');
  w.update(1, 0);
  w.update(1, 1);
  assert.equal(w.check(0, 0xffffffff), 'duplicate');
  assert.equal(w.check(0, 0xfffffffd), 'ok');
  assert.equal(w.check(1, 1), 'duplicate');
  assert.equal(w.check(0, 0xffffffff - 62), 'too-old'); // distance from (1,1) is 64
});
