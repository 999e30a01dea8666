import '@tensorflow/tfjs-backend-cpu';
// An application registers tfjs-core's gradients (the @tensorflow/tfjs umbrella does it); so does this test.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { saeFromJSON, saeFromRecord, saeToJSON, saeToRecord } from './io.js';
import { auxKLoss, DeadLatentTracker, decodeSAE, denseLatents, encodeSAE, initSAE, normalizedMSE, type SparseCode, type TopKSAE } from './sae.js';
import { reconstructSAE, trainSAE } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Tokens made of `active` atoms of a random unit-norm dictionary with positive coefficients, plus an offset and noise. */
function sparseDictionaryData(seed: number, tokens: number, features: number, atoms: number, active: number) {
  const rng = new Random(seed);
  const dict = rng.fillNormal(new Float64Array(atoms * features));
  for (let a = 0; a < atoms; a++) {
    const n = Math.hypot(...dict.subarray(a * features, (a + 1) * features));
    for (let i = 0; i < features; i++) dict[a * features + i]! /= n;
  }
  const offset = rng.fillNormal(new Float64Array(features));
  const x = new Float32Array(tokens * features);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < features; i++) x[t * features + i] = offset[i]! + 0.01 * rng.normal();
    for (const a of rng.sample(active, atoms)) {
      const c = rng.uniform(0.5, 2);
      for (let i = 0; i < features; i++) x[t * features + i]! += c * dict[a * features + i]!;
    }
  }
  return x;
}

/** Dense reference: pre-activations by explicit sums, top k by sorting. */
function bruteEncode(sae: TopKSAE, x: Float32Array, tokens: number, k: number, allowed?: Uint8Array, withBias = true): Float64Array {
  const { features, latents } = sae;
  const out = new Float64Array(tokens * features);
  for (let t = 0; t < tokens; t++) {
    const pre = [...Array(latents).keys()].map((j) => {
      let s = sae.bEnc[j]!;
      for (let i = 0; i < features; i++) s += sae.wEnc[j * features + i]! * (x[t * features + i]! - sae.bPre[i]!);
      return { j, s };
    });
    const chosen = pre.filter((p) => !allowed || allowed[p.j] === 1).sort((a, b) => b.s - a.s || a.j - b.j).slice(0, k);
    for (let i = 0; i < features; i++) {
      let v = withBias ? sae.bPre[i]! : 0;
      for (const { j, s } of chosen) v += sae.wDec[i * latents + j]! * (sae.activation === 'relu' ? Math.max(0, s) : s);
      out[t * features + i] = v;
    }
  }
  return out;
}

describe('TopK SAE core', () => {
  const features = 8;
  const tokens = 30;
  const x = sparseDictionaryData(1, tokens, features, 12, 2);
  const sae = initSAE(features, { latents: 16, k: 3, bPreInit: 'mean' }, { x, tokens });
  sae.bEnc.set(new Random(2).fillNormal(new Float32Array(16), 0, 0.1));

  it('initializes tied (W_enc = W_decᵀ), with unit decoder columns and b_pre at the data mean or median', () => {
    for (let i = 0; i < features; i++) for (let j = 0; j < 16; j++) expect(sae.wEnc[j * features + i]).toBe(sae.wDec[i * 16 + j]);
    for (let j = 0; j < 16; j++) expect(Math.hypot(...Array.from({ length: features }, (_, i) => sae.wDec[i * 16 + j]!))).toBeCloseTo(1, 6);
    for (let i = 0; i < features; i++) {
      const col = Array.from({ length: tokens }, (_, t) => x[t * features + i]!);
      expect(sae.bPre[i]).toBeCloseTo(col.reduce((s, v) => s + v, 0) / tokens, 5);
      const med = initSAE(features, { latents: 16, k: 3 }, { x, tokens }).bPre[i]!;
      const sorted = col.sort((a, b) => a - b);
      expect(med).toBeCloseTo((sorted[14]! + sorted[15]!) / 2, 6);
    }
    expect(() => initSAE(features, { latents: 4, k: 5, bPreInit: 'zero' })).toThrow(ArgumentError);
    expect(() => initSAE(features, { latents: 16, k: 3 })).toThrow(/needs data/);
  });

  it('encodes exactly k non-zero latents per token and decodes to W_dec z + b_pre (dense brute force)', () => {
    const code = encodeSAE(sae, x, tokens);
    const z = denseLatents(code, 16);
    for (let t = 0; t < tokens; t++) expect(z.subarray(t * 16, (t + 1) * 16).reduce((c, v) => c + (v !== 0 ? 1 : 0), 0)).toBe(3);
    const ref = bruteEncode(sae, x, tokens, 3);
    decodeSAE(sae, code).forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 4));
    // relu: kept negatives become 0, so at most k fire
    const r = encodeSAE({ ...sae, activation: 'relu' }, x, tokens);
    expect(r.values.every((v) => v >= 0)).toBe(true);
    const refRelu = bruteEncode({ ...sae, activation: 'relu' }, x, tokens, 3);
    decodeSAE({ ...sae, activation: 'relu' }, r).forEach((v, i) => expect(v).toBeCloseTo(refRelu[i]!, 4));
    expect(() => encodeSAE(sae, x, tokens + 1)).toThrow(ShapeError);
  });

  it('counts tokens since each latent fired, per batch', () => {
    const tr = new DeadLatentTracker(4, 5);
    const code = (tokens: number, fires: [number, number][]): SparseCode => {
      // k = 1: token t uses latent j with value 1, or latent 0 with value 0 (no firing)
      const indices = new Int32Array(tokens);
      const values = new Float32Array(tokens);
      for (const [t, j] of fires) [indices[t], values[t]] = [j, 1];
      return { tokens, k: 1, indices, values };
    };
    tr.update(code(4, [[1, 2], [3, 1]]));
    expect(Array.from(tr.sinceFired)).toEqual([4, 0, 2, 4]);
    expect(tr.deadCount()).toBe(0);
    tr.update(code(3, [[0, 2]]));
    expect(Array.from(tr.sinceFired)).toEqual([7, 3, 2, 7]);
    expect(Array.from(tr.dead())).toEqual([1, 0, 0, 1]);
    expect(Array.from(DeadLatentTracker.fromState(JSON.parse(JSON.stringify(tr.state()))).sinceFired)).toEqual([7, 3, 2, 7]);
  });

  it('latents forced never to fire are exactly the dead ones', () => {
    // 6 latents, k = 3, latents 1, 3 and 4 pushed far below: the other three fire on every token
    const s = initSAE(features, { latents: 6, k: 3, bPreInit: 'zero' });
    for (const j of [1, 3, 4]) s.bEnc[j] = -1e6;
    const tr = new DeadLatentTracker(6, 50);
    for (let b = 0; b < 3; b++) {
      tr.update(encodeSAE(s, x.subarray(0, 20 * features), 20));
      expect(tr.deadCount()).toBe(b < 2 ? 0 : 3); // 20, 40 tokens: not yet; 60 >= 50: dead
    }
    expect(Array.from(tr.dead())).toEqual([0, 1, 0, 1, 1, 0]);
  });

  it('AuxK loss equals the brute-force residual fit from the top dead latents', () => {
    const dead = Uint8Array.from([1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
    for (const [auxK, act] of [[2, 'none'], [4, 'relu'], [20, 'none']] as const) {
      const s = { ...sae, activation: act };
      const xHat = bruteEncode(s, x, tokens, 3);
      const eHat = bruteEncode(s, x, tokens, auxK, dead, false);
      let ref = 0;
      for (let p = 0; p < x.length; p++) ref += (x[p]! - xHat[p]! - eHat[p]!) ** 2;
      expect(auxKLoss(s, x, tokens, dead, auxK, 0.25)).toBeCloseTo((0.25 * ref) / x.length, 5);
    }
    expect(auxKLoss(sae, x, tokens, new Uint8Array(16), 4, 1)).toBe(0);
  });

  it('JSON and Float32Array-record round trips are exact', () => {
    const back = saeFromJSON(JSON.parse(JSON.stringify(saeToJSON(sae))));
    expect(back).toEqual(sae);
    const rec = saeToRecord(sae);
    expect(saeFromRecord(rec)).toEqual(sae);
    expect(() => saeFromRecord({ header: rec.header, tensors: { ...rec.tensors, bPre: new Float32Array(3) } })).toThrow(ShapeError);
    expect(() => saeFromJSON({ ...saeToJSON(sae), format: 'other' })).toThrow(ShapeError);
  });
});

describe('trainSAE (tfjs)', () => {
  const features = 16;
  const tokens = 1024;
  const x = sparseDictionaryData(7, tokens, features, 32, 3);

  it('lowers the normalized MSE on data from a sparse dictionary, keeping unit decoder columns', () => {
    const shape = { latents: 32, k: 4, seed: 3 };
    const config = { ...shape, steps: 250, batchSize: 128, lr: 0.01 };
    const init = initSAE(features, shape, { x, tokens });
    const before = normalizedMSE(x, decodeSAE(init, encodeSAE(init, x, tokens)), tokens, features);
    const { sae, history } = trainSAE(x, tokens, features, config, init);
    const after = normalizedMSE(x, decodeSAE(sae, encodeSAE(sae, x, tokens)), tokens, features);
    expect(after).toBeLessThan(0.5 * before);
    expect(after).toBeLessThan(0.2);
    expect(history).toHaveLength(250);
    const tail = history.slice(-20).reduce((s, h) => s + h.nmse, 0) / 20;
    expect(tail).toBeLessThan(history[0]!.nmse);
    for (let j = 0; j < 32; j++) expect(Math.hypot(...Array.from({ length: features }, (_, i) => sae.wDec[i * 32 + j]!))).toBeCloseTo(1, 5);
    // the tfjs reconstruction equals the plain one
    const r = reconstructSAE(sae, tf.tensor2d(x.subarray(0, 10 * features), [10, features]));
    const plain = decodeSAE(sae, encodeSAE(sae, x.subarray(0, 10 * features), 10));
    Array.from(r.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(plain[i]!, 4));
  });

  it("the first step's losses and dead count equal the plain computation on the same batch", () => {
    const n = 64;
    const data = x.subarray(0, n * features);
    const init = initSAE(features, { latents: 24, k: 2, bPreInit: 'mean' }, { x: data, tokens: n });
    for (const j of [0, 5]) init.bEnc[j] = -100; // never fire
    // one full batch: the order of its tokens does not change the means; deadAfter = n makes the non-firing dead
    const config = { latents: 24, k: 2, steps: 1, batchSize: n, deadAfter: n, auxK: 3, auxCoef: 0.5 };
    const { history, tracker } = trainSAE(data, n, features, config, init);
    const code = encodeSAE(init, data, n);
    const ref = new DeadLatentTracker(24, n);
    ref.update(code);
    expect(history[0]!.dead).toBe(ref.deadCount());
    expect(ref.deadCount()).toBeGreaterThanOrEqual(2);
    expect(Array.from(tracker.dead())).toEqual(Array.from(ref.dead()));
    const xHat = decodeSAE(init, code);
    let se = 0;
    for (let p = 0; p < data.length; p++) se += (data[p]! - xHat[p]!) ** 2;
    expect(history[0]!.mse).toBeCloseTo(se / data.length, 5);
    const aux = auxKLoss(init, data, n, ref.dead(), 3, 0.5);
    expect(aux).toBeGreaterThan(0);
    expect(Math.abs(history[0]!.auxLoss - aux) / aux).toBeLessThan(1e-5);
    expect(history[0]!.loss).toBe(history[0]!.mse + history[0]!.auxLoss);
  });
});
