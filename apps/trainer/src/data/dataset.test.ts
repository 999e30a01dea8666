import { describe, expect, it } from 'vitest';
import { Random } from '@sparse/tensor';
import { embeddedData, evalWindowStarts, sampleBatch, splitHeldOut } from './dataset.js';

const stream = Int32Array.from({ length: 1000 }, (_, i) => i);

describe('splitHeldOut', () => {
  it('holds out the last 10%', () => {
    const { train, heldOut } = splitHeldOut(stream);
    expect(train.length).toBe(900);
    expect(heldOut[0]).toBe(900);
    expect(heldOut.length).toBe(100);
  });

  it('splits the embedded corpus the same way', () => {
    const data = embeddedData({ chars: 5000 });
    expect(data.train.length + data.heldOut.length).toBe(data.tokens.length);
    expect(data.heldOut.length).toBe(Math.round(data.tokens.length * 0.1));
    expect(data.tokenizer.kind).toBe('char');
  });
});

describe('sampleBatch', () => {
  it('draws windows with targets shifted by one, deterministically', () => {
    const a = sampleBatch(stream, 4, 8, new Random(1));
    const b = sampleBatch(stream, 4, 8, new Random(1));
    expect(a.inputs).toEqual(b.inputs);
    for (let r = 0; r < 4; r++) {
      for (let t = 0; t < 8; t++) {
        expect(a.targets[r * 8 + t]).toBe(a.inputs[r * 8 + t] + 1);
        if (t > 0) expect(a.inputs[r * 8 + t]).toBe(a.inputs[r * 8 + t - 1] + 1);
      }
      expect(a.targets[r * 8 + 7]).toBeLessThan(1000);
    }
  });
});

describe('evalWindowStarts', () => {
  it('tiles the stream with non-overlapping windows, or an even subset', () => {
    expect(evalWindowStarts(stream.subarray(0, 33), 8)).toEqual([0, 8, 16, 24]);
    expect(evalWindowStarts(stream.subarray(0, 32), 8)).toEqual([0, 8, 16]);
    const some = evalWindowStarts(stream, 10, 5);
    expect(some).toEqual([0, 190, 390, 590, 790]);
    expect(evalWindowStarts(stream, 10, 5)).toEqual(some);
  });
});
