// train method 'dpo': log-probabilities of a pair packed with prefix sharing equal those of two
// separate passes; the loss equals a hand computation; a tiny run on generated pairs widens the
// preference margin and resumes exactly; the shipped pairs file is what the generator writes.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { generateCorpus } from '../../data/corpus.js';
import { CharTokenizer } from '../../data/tokenizer.js';
import { createModel } from '../../model/index.js';
import type { ModelSpec } from '../../model/types.js';
import { resolveRecipe } from '../../recipe/load.js';
import { startRun } from '../../run/runner.js';
import { packageRoot } from '../../testing/dist.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { dpoLoss, encodePair, packPairs, pairLogProbs, parsePreferenceJSONL, type PreferencePair } from './dpo.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-dpo-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await chooseBackend();
});

/**
 * Preference pairs from the embedded corpus's arithmetic lines ("a + b = c"): the prompt "a + b = ",
 * the true result chosen, a wrong one (off by 1..9, drawn from `seed`) rejected. Deterministic.
 */
export function arithmeticPairs(count: number, seed = 7): string {
  const rng = new Random(seed);
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const line of generateCorpus().split('\n')) {
    const m = /^(\d+ [-+*] \d+ = )(\d+)$/.exec(line);
    if (!m || seen.has(line)) continue;
    seen.add(line);
    const right = Number(m[2]);
    let wrong = right;
    while (wrong === right || wrong < 0) wrong = right + (rng.int(0, 2) === 0 ? -1 : 1) * rng.int(1, 10);
    lines.push(JSON.stringify({ prompt: m[1], chosen: String(right), rejected: String(wrong) }));
    if (lines.length === count) break;
  }
  return `${lines.join('\n')}\n`;
}

const PAIRS_FILE = join(packageRoot, 'recipes', 'data', 'dpo-pairs.jsonl');

describe('the shipped pairs', () => {
  it('recipes/data/dpo-pairs.jsonl is arithmeticPairs(160)', () => {
    if (process.env.WRITE_DPO_PAIRS) writeFileSync(PAIRS_FILE, arithmeticPairs(160));
    expect(readFileSync(PAIRS_FILE, 'utf8')).toBe(arithmeticPairs(160));
    const pairs = parsePreferenceJSONL(readFileSync(PAIRS_FILE, 'utf8'), PAIRS_FILE);
    expect(pairs).toHaveLength(160);
    for (const p of pairs) expect(p.chosen).not.toBe(p.rejected);
  });
});

const tok = CharTokenizer.fromText(generateCorpus());
const texts = [
  { prompt: '42 + 2 = ', chosen: '44', rejected: '47' },
  { prompt: 'Where does Kabe live? ', chosen: 'Kabe lives in Tanto.', rejected: 'Nowhere.' },
  { prompt: '8 * 1 = ', chosen: '8', rejected: '16' },
];

const SPECS: [string, Omit<ModelSpec, 'vocab'>][] = [
  ['gpt', { architecture: 'gpt', d: 16, layers: 2, heads: 2, ctx: 48, mlpRatio: 2 }],
  ['llama', { architecture: 'llama', d: 16, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 24, ctx: 48 }],
  ['llama with experts', { architecture: 'llama', d: 16, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 24, ctx: 48, moe: { experts: 2, topK: 1 } }],
];

describe('pair log-probabilities', () => {
  for (const [label, spec] of SPECS) {
    it(`${label}: one prefix-sharing sequence per pair gives the log-probabilities of two separate passes`, () => {
      const model = createModel({ ...spec, vocab: tok.vocabSize } as ModelSpec, { seed: 3 });
      const pairs = texts.map((t) => encodePair(t, tok, 48, true));
      const opts = { blockSize: 8, ctx: 48 };
      tf.tidy(() => {
        const shared = pairLogProbs(model, packPairs(pairs, { ...opts, prefixSharing: true }));
        const apart = pairLogProbs(model, packPairs(pairs, { ...opts, prefixSharing: false }));
        for (const k of ['chosen', 'rejected'] as const) {
          const a = shared[k].dataSync();
          const b = apart[k].dataSync();
          for (let i = 0; i < pairs.length; i++) expect(Math.abs(a[i]! - b[i]!), `${k} ${i}`).toBeLessThan(1e-4);
        }
        // and each pair alone, unpadded: the sum of log softmax at the response positions of [prompt | response]
        for (const [i, p] of pairs.entries()) {
          for (const [k, resp] of [['chosen', p.chosen], ['rejected', p.rejected]] as const) {
            const seq = Int32Array.from([...p.prompt, ...resp]);
            const logp = tf.logSoftmax(model.logits2d(tf.tensor2d(seq, [1, seq.length], 'int32'))).arraySync() as number[][];
            let want = 0;
            for (let j = 0; j < resp.length; j++) want += logp[p.prompt.length - 1 + j]![resp[j]!]!;
            expect(Math.abs(shared[k].dataSync()[i]! - want), `${k} ${i} by hand`).toBeLessThan(1e-4);
          }
        }
      });
      model.dispose();
    });
  }

  it('with a model pattern (sliding window + sinks), shared and separate passes still agree', () => {
    for (const [label, spec] of SPECS.slice(0, 2)) {
      const model = createModel({ ...spec, vocab: tok.vocabSize, attention: { pattern: 'sliding-window', window: 6, sinks: 2, blockSize: 8 } } as unknown as ModelSpec, { seed: 9 });
      const pairs = texts.map((t) => encodePair(t, tok, 48, true));
      const opts = { blockSize: 8, ctx: 48, pattern: model.spec.attention as Record<string, unknown> };
      tf.tidy(() => {
        const shared = pairLogProbs(model, packPairs(pairs, { ...opts, prefixSharing: true }));
        const apart = pairLogProbs(model, packPairs(pairs, { ...opts, prefixSharing: false }));
        for (const k of ['chosen', 'rejected'] as const) {
          const a = shared[k].dataSync();
          const b = apart[k].dataSync();
          for (let i = 0; i < pairs.length; i++) expect(Math.abs(a[i]! - b[i]!), `${label} ${k} ${i}`).toBeLessThan(1e-4);
        }
      });
      model.dispose();
    }
  });

  it('gradients through the shared sequence equal those of the separate passes', () => {
    const model = createModel({ ...SPECS[0]![1], vocab: tok.vocabSize } as ModelSpec, { seed: 4 });
    const pairs = texts.map((t) => encodePair(t, tok, 48, true));
    const grads = (prefixSharing: boolean) =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const { chosen, rejected } = pairLogProbs(model, packPairs(pairs, { prefixSharing, blockSize: 4, ctx: 48 }));
          return tf.sub(tf.sum(chosen), tf.mul(tf.sum(rejected), 0.5)) as tf.Scalar;
        }, model.variables());
        return Object.fromEntries(Object.entries(grads).map(([n, g]) => [n, Float32Array.from(g.dataSync())]));
      });
    const a = grads(true);
    const b = grads(false);
    for (const n of Object.keys(b)) for (let i = 0; i < b[n]!.length; i++) expect(Math.abs(a[n]![i]! - b[n]![i]!), n).toBeLessThan(1e-4 * (1 + Math.abs(b[n]![i]!)));
    model.dispose();
  });

  it('packs the rejected response after the chosen one, positions restarting at the prompt end', () => {
    const p: PreferencePair = { prompt: Int32Array.from([1, 2, 3]), chosen: Int32Array.from([4, 5]), rejected: Int32Array.from([6, 7, 8]) };
    const packed = packPairs([p], { prefixSharing: true, blockSize: 4, ctx: 16 });
    expect(Array.from(packed.ids)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(packed.attention!.positions!)).toEqual([0, 1, 2, 3, 4, 3, 4, 5]);
    // chosen 4 at the prompt's last position, 5 after 4; rejected 6 also at the prompt's last position
    expect(Array.from(packed.selC)).toEqual([0, 0, 1, 1, 0, 0, 0, 0]);
    expect(Array.from(packed.selR)).toEqual([0, 0, 1, 0, 0, 1, 1, 0]);
    expect(packed.targetsR[2]).toBe(6);
  });

  it('cuts the prompt from its start to fit the context', () => {
    const p = encodePair({ prompt: 'abcdefgh', chosen: 'xy', rejected: 'z' }, CharTokenizer.fromText('abcdefghxyz'), 6, true);
    expect(Array.from(p.prompt)).toEqual(Array.from(CharTokenizer.fromText('abcdefghxyz').encode('fgh')));
  });
});

describe('the DPO loss', () => {
  it('equals −mean log σ(β[(π_c − ref_c) − (π_r − ref_r)]) by hand', () => {
    const pc = [-3.2, -1.5];
    const pr = [-2.9, -4.0];
    const rc = [-3.0, -2.0];
    const rr = [-3.0, -3.5];
    const beta = 0.5;
    const want = -0.5 * [0, 1].reduce((s, i) => s + Math.log(1 / (1 + Math.exp(-beta * (pc[i]! - rc[i]! - (pr[i]! - rr[i]!))))), 0);
    const got = tf.tidy(() => dpoLoss(tf.tensor1d(pc), tf.tensor1d(pr), tf.tensor1d(rc), tf.tensor1d(rr), beta).dataSync()[0]!);
    expect(Math.abs(got - want)).toBeLessThan(1e-6);
    // at the reference the loss is log 2
    expect(tf.tidy(() => dpoLoss(tf.tensor1d(rc), tf.tensor1d(rr), tf.tensor1d(rc), tf.tensor1d(rr), beta).dataSync()[0]!)).toBeCloseTo(Math.log(2), 6);
  });
});

describe('a DPO run', () => {
  const file = join(tmp, 'pairs.jsonl');
  writeFileSync(file, arithmeticPairs(40, 11));
  const recipe = resolveRecipe({
    seed: 2,
    model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
    data: { source: 'jsonl', path: file, response: 'chosen', tokenizer: 'char' },
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 20, batch: 8 },
      { stage: 'train', method: 'dpo', config: { beta: 0.5 }, steps: 12, batch: 8, lr: 5e-3, checkpointEvery: 4 },
      { stage: 'evaluate' },
    ],
  });
  const dpoEvents = (dir: string) => events(dir).filter((e) => e.event === 'dpo') as unknown as { at: string; rewardMargin: number; logProbMargin: number; accuracy: number }[];

  it('widens the preference margin, and a stopped run resumes to the same losses', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const [start, end] = dpoEvents(whole);
    expect(start!.at).toBe('start');
    expect(start!.rewardMargin).toBeCloseTo(0, 5);
    expect(end!.rewardMargin).toBeGreaterThan(0.05);
    expect(end!.logProbMargin).toBeGreaterThan(start!.logProbMargin);
    expect(end!.accuracy).toBeGreaterThan(0.5);
    const broken = join(tmp, 'broken');
    await runWithStops(recipe, broken, [{ stage: 1, step: 6, resumeAt: 4, state: 'dpoReference' }]);
    await expectSameRun(whole, broken);
  }, 120_000);
});
