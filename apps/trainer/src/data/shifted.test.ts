import { describe, expect, it } from 'vitest';
import { generateCorpus } from './corpus.js';
import { embeddedData, embeddedShiftedData } from './dataset.js';
import { generateShiftedCorpus, SHIFTED_ALPHABET } from './shifted.js';

/** Cross-entropy (nats/char) of `test` under an add-one-smoothed character bigram model fitted on `train`. */
function bigramNats(train: Int32Array, test: Int32Array, vocab: number): number {
  const counts = new Float64Array(vocab * vocab).fill(1);
  const rows = new Float64Array(vocab).fill(vocab);
  for (let i = 1; i < train.length; i++) {
    counts[train[i - 1] * vocab + train[i]]++;
    rows[train[i - 1]]++;
  }
  let nats = 0;
  for (let i = 1; i < test.length; i++) nats -= Math.log(counts[test[i - 1] * vocab + test[i]] / rows[test[i - 1]]);
  return nats / (test.length - 1);
}

describe('the shifted embedded task', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    expect(generateShiftedCorpus({ seed: 3, chars: 2000 })).toBe(generateShiftedCorpus({ seed: 3, chars: 2000 }));
    expect(generateShiftedCorpus({ seed: 3, chars: 2000 })).not.toBe(generateShiftedCorpus({ seed: 4, chars: 2000 }));
    const t = generateShiftedCorpus({ chars: 5000 });
    expect(t.length).toBeGreaterThanOrEqual(5000);
    expect(t.length).toBeLessThan(5200);
  });

  it('uses only characters every pretraining corpus has, so it shares the char tokenizer', () => {
    const shifted = new Set(generateShiftedCorpus({ seed: 9, chars: 50_000 }));
    for (const c of shifted) expect(SHIFTED_ALPHABET, JSON.stringify(c)).toContain(c);
    for (const seed of [1, 1234, 77]) {
      const pre = new Set(generateCorpus({ seed }));
      for (const c of SHIFTED_ALPHABET) expect(pre.has(c), `${JSON.stringify(c)} in corpus seed ${seed}`).toBe(true);
    }
    const pre = embeddedData();
    const data = embeddedShiftedData({ tokenizer: pre.tokenizer });
    expect(data.tokenizer).toBe(pre.tokenizer);
    expect(pre.tokenizer.decode(data.tokens)).toBe(generateShiftedCorpus());
    expect(embeddedShiftedData({ chars: 3000 }).tokenizer.vocabSize).toBe(pre.tokenizer.vocabSize);
  });

  it('is a different distribution: a bigram model of the pretraining text predicts it worse than held-out pretraining text', () => {
    const pre = embeddedData();
    const shifted = embeddedShiftedData({ tokenizer: pre.tokenizer });
    const v = pre.tokenizer.vocabSize;
    const onPre = bigramNats(pre.train, pre.heldOut, v);
    const onShifted = bigramNats(pre.train, shifted.heldOut, v);
    const shiftedOwn = bigramNats(shifted.train, shifted.heldOut, v);
    expect(onShifted - onPre).toBeGreaterThan(0.15);
    // and it is learnable: fitting on its own training part closes the gap
    expect(shiftedOwn).toBeLessThan(onShifted - 0.15);
  });
});
