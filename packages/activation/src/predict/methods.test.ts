import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { calibrateActivation, getActivationMethod } from '../registry.js';
import type { Site, SiteSample, SiteSparsifier } from '../types.js';
import { activationFunction, denseProduct, exactScores } from './estimator.js';
import { headNorms } from './probe.js';
import { keepCount, recall, topRows, type TopSet } from './select.js';

const normals = (rng: Random, n: number) => rng.fillNormal(new Float32Array(n));
const f32 = (a: Float64Array) => Float32Array.from(a);

/** One Llama-style block: q input, o_proj input (heads × hd), gate/up inputs, the activation, down input. */
function llamaBlock(rng: Random, block: number, d: number, hidden: number, heads: number, tokens: number) {
  const p = `model.layers.${block}.`;
  const site = (name: string, role: string, features: number, out?: number, kind: Site['kind'] = 'linear-input'): Site => ({ name, kind, block, role, features, ...(out ? { out } : {}) });
  const sites = {
    q: site(`${p}self_attn.q_proj.weight`, 'attn.q', d, d),
    o: site(`${p}self_attn.o_proj.weight`, 'attn.out', d, d),
    gate: site(`${p}mlp.gate_proj.weight`, 'mlp.gate', d, hidden),
    up: site(`${p}mlp.up_proj.weight`, 'mlp.up', d, hidden),
    act: site(`${p}mlp.act`, 'mlp.act', hidden, undefined, 'mlp-activation'),
    down: site(`${p}mlp.down_proj.weight`, 'mlp.down', hidden, d),
  };
  const wGate = normals(rng, hidden * d);
  const wUp = normals(rng, hidden * d);
  const wDown = normals(rng, d * hidden);
  const wQ = normals(rng, d * d);
  const wO = normals(rng, d * d);
  const data = (t: number) => {
    const h = normals(rng, t * d);
    const g = denseProduct(wGate, hidden, d, h, t);
    const silu = activationFunction('silu');
    const act = Float32Array.from(g, silu);
    // a stand-in for the attention output: each head's slice scales with exp of one input direction
    const attn = new Float32Array(t * d);
    const hd = d / heads;
    for (let i = 0; i < t; i++) for (let hh = 0; hh < heads; hh++) {
      const s = Math.exp(0.6 * h[i * d + hh]!);
      for (let j = 0; j < hd; j++) attn[i * d + hh * hd + j] = s * (1 + 0.1 * rng.normal());
    }
    const u = f32(denseProduct(wUp, hidden, d, h, t));
    const down = act.map((v, i) => v * u[i]!);
    return { h, act, attn, down };
  };
  const cal = data(tokens);
  const samples: SiteSample[] = [
    { site: sites.q, x: cal.h, tokens, weight: { data: wQ, out: d, in: d } },
    { site: sites.o, x: cal.attn, tokens, weight: { data: wO, out: d, in: d } },
    { site: sites.gate, x: cal.h, tokens, weight: { data: wGate, out: hidden, in: d } },
    { site: sites.act, x: cal.act, tokens },
    { site: sites.up, x: cal.h, tokens, weight: { data: wUp, out: hidden, in: d } },
    { site: sites.down, x: cal.down, tokens, weight: { data: wDown, out: d, in: hidden } },
  ];
  return { sites, samples, data, wGate, wUp };
}

const bySite = (sps: SiteSparsifier[]) => new Map(sps.map((s) => [s.site, s]));

/** Applies a sparsifier to a copy and returns the copy and the count. */
function run(sp: SiteSparsifier, x: Float32Array, tokens: number): { y: Float32Array; kept: number } {
  const y = Float32Array.from(x);
  return { y, kept: sp.apply(y, tokens) };
}

/** The kept entries of each row as a TopSet (k = the same count in every row). */
function keptSet(y: Float32Array, tokens: number, n: number): TopSet {
  const k = y.subarray(0, n).reduce((c, v) => c + (v !== 0 ? 1 : 0), 0);
  const indices: number[] = [];
  for (let t = 0; t < tokens; t++) {
    const row = [...Array(n).keys()].filter((j) => y[t * n + j] !== 0);
    expect(row.length).toBe(k);
    indices.push(...row);
  }
  return { tokens, n, k, indices: Int32Array.from(indices) };
}

describe('sparselora-svd', () => {
  const [d, hidden, heads, tokens] = [16, 48, 4, 64];
  const rng = new Random(21);
  const blk = llamaBlock(rng, 0, d, hidden, heads, tokens);

  it('acts on the MLP input sites and the activation only, and needs the weights', () => {
    const m = getActivationMethod('sparselora-svd');
    expect(m.needs).toEqual(['weight']);
    const cfg = m.schema.safeParse({}).data as never;
    expect(blk.samples.filter((s) => m.acts(cfg, s.site)).map((s) => s.site.role)).toEqual(['mlp.gate', 'mlp.act', 'mlp.up']);
  });

  it('at full rank, the activation site keeps exactly the true top channels by |silu(g)·u|, predicted from the gate input', () => {
    const sps = bySite(calibrateActivation('sparselora-svd', { rank: d, keep: 0.25 }, blk.samples));
    expect([...sps.keys()].sort()).toEqual([blk.sites.act.name, blk.sites.gate.name, blk.sites.up.name].sort());
    const t = 10;
    const fresh = blk.data(t);
    // in forward order: gate input (records, changes nothing), activation (zeroes), up input (nothing)
    const g = run(sps.get(blk.sites.gate.name)!, fresh.h, t);
    expect(g.kept).toBe(t * d);
    expect(g.y).toEqual(fresh.h);
    const a = run(sps.get(blk.sites.act.name)!, fresh.act, t);
    const k = keepCount(0.25, hidden);
    expect(a.kept).toBe(t * k);
    const truth = topRows(exactScores({ activation: 'silu', up: blk.wUp, gate: blk.wGate, hidden, d }, fresh.h, t), t, hidden, k);
    expect(recall(keptSet(a.y, t, hidden), truth)).toBe(1);
    // kept entries are untouched
    a.y.forEach((v, i) => expect(v === 0 || v === fresh.act[i]).toBe(true));
    expect(run(sps.get(blk.sites.up.name)!, fresh.h, t).y).toEqual(fresh.h);
    expect((sps.get(blk.sites.gate.name)!.state() as { recall: number }).recall).toBe(1);
  });

  it('a plain MLP (GPT-style c_fc -> gelu -> c_proj) records at the up input and keeps the exact top |gelu(u)| at full rank', () => {
    const r = new Random(5);
    const [dd, hh, n] = [8, 24, 40];
    const up: Site = { name: 'h.3.mlp.c_fc.weight', kind: 'linear-input', block: 3, role: 'mlp.up', features: dd, out: hh };
    const act: Site = { name: 'h.3.mlp.act', kind: 'mlp-activation', block: 3, role: 'mlp.act', features: hh };
    const w = normals(r, hh * dd);
    const gelu = activationFunction('gelu');
    const make = (t: number) => {
      const h = normals(r, t * dd);
      return { h, a: Float32Array.from(denseProduct(w, hh, dd, h, t), gelu) };
    };
    const cal = make(n);
    const sps = bySite(calibrateActivation('sparselora-svd', { rank: dd, keep: 0.25, activation: 'gelu' }, [
      { site: up, x: cal.h, tokens: n, weight: { data: w, out: hh, in: dd } },
      { site: act, x: cal.a, tokens: n },
    ]));
    const fresh = make(12);
    run(sps.get(up.name)!, fresh.h, 12);
    const a = run(sps.get(act.name)!, fresh.a, 12);
    const truth = topRows(Float64Array.from(fresh.a, Math.abs), 12, hh, keepCount(0.25, hh));
    expect(recall(keptSet(a.y, 12, hh), truth)).toBe(1);
  });

  it('lower rank gives lower recall', () => {
    const rec = (rank: number) => (calibrateActivation('sparselora-svd', { rank, keep: 0.25 }, blk.samples)[0]!.state() as { recall: number }).recall;
    expect(rec(2)).toBeLessThan(rec(8));
    expect(rec(8)).toBeLessThan(1);
  });

  it('throws a clear error when the activation site comes first, or with another token count', () => {
    const sps = bySite(calibrateActivation('sparselora-svd', { rank: 4 }, blk.samples));
    const fresh = blk.data(6);
    const act = sps.get(blk.sites.act.name)!;
    expect(() => run(act, fresh.act, 6)).toThrow(ArgumentError);
    expect(() => run(act, fresh.act, 6)).toThrow(/apply the layer's input site first/);
    run(sps.get(blk.sites.gate.name)!, fresh.h, 6);
    expect(() => run(act, fresh.act.subarray(0, 5 * hidden), 5)).toThrow(ShapeError);
    // a prediction serves one forward
    run(sps.get(blk.sites.gate.name)!, fresh.h, 6);
    run(act, fresh.act, 6);
    expect(() => run(act, fresh.act, 6)).toThrow(ArgumentError);
  });

  it('rejects samples without weights', () => {
    const noWeight = blk.samples.map((s) => (s.site.role === 'mlp.up' ? { site: s.site, x: s.x, tokens: s.tokens } : s));
    expect(() => calibrateActivation('sparselora-svd', {}, noWeight)).toThrow(/no weight/);
  });

  it('state round trip: restored sparsifiers (one parsed config) zero the same entries', () => {
    const m = getActivationMethod('sparselora-svd');
    const sps = calibrateActivation('sparselora-svd', { rank: 5, keep: 0.5 }, blk.samples);
    const cfg = m.schema.safeParse({ rank: 5, keep: 0.5 }).data as never;
    const states = JSON.parse(JSON.stringify(sps.map((s) => s.state()))) as unknown[];
    const sites = blk.samples.filter((s) => m.acts(cfg, s.site)).map((s) => s.site);
    const restored = bySite(sites.map((site, i) => m.restore(cfg, site, states[i])));
    const orig = bySite(sps);
    const fresh = blk.data(8);
    for (const map of [orig, restored]) run(map.get(blk.sites.gate.name)!, fresh.h, 8);
    expect(run(restored.get(blk.sites.act.name)!, fresh.act, 8).y).toEqual(run(orig.get(blk.sites.act.name)!, fresh.act, 8).y);
    expect(() => m.restore(cfg, blk.sites.up, { role: 'nope' })).toThrow(ArgumentError);
    expect(() => m.restore(cfg, { ...blk.sites.gate, name: 'model.layers.7.mlp.gate_proj.weight', block: 7 }, states[0])).toThrow(/belongs to/);
  });
});

describe('polar', () => {
  const [d, hidden, heads, tokens] = [16, 48, 4, 400];
  const rng = new Random(31);
  const blk = llamaBlock(rng, 2, d, hidden, heads, tokens);
  const config = { attention: { heads, keep: 0.5 }, mlp: { keep: 0.25 } };

  it('needs attention or mlp selection, acts on q/out and the MLP sites', () => {
    const m = getActivationMethod('polar');
    expect(m.schema.safeParse({}).success).toBe(false);
    const cfg = m.schema.safeParse({ attention: { heads } }).data as never;
    expect(blk.samples.filter((s) => m.acts(cfg, s.site)).map((s) => s.site.role)).toEqual(['attn.q', 'attn.out']);
  });

  it('zeroes whole heads at attn.out and beats a random choice of heads and neurons', () => {
    const sps = bySite(calibrateActivation('polar', config, blk.samples));
    const t = 200;
    const fresh = blk.data(t);
    run(sps.get(blk.sites.q.name)!, fresh.h, t);
    const o = run(sps.get(blk.sites.o.name)!, fresh.attn, t);
    const hd = d / heads;
    expect(o.kept).toBe(t * 2 * hd);
    // a head's slice is either all kept or all zero
    const headKept = new Float64Array(t * heads);
    for (let i = 0; i < t; i++) for (let hh = 0; hh < heads; hh++) {
      const slice = Array.from(o.y.subarray(i * d + hh * hd, i * d + (hh + 1) * hd));
      const zero = slice.every((v) => v === 0);
      expect(zero || slice.every((v, j) => v === fresh.attn[i * d + hh * hd + j])).toBe(true);
      headKept[i * heads + hh] = zero ? 0 : 1;
    }
    const headTruth = topRows(headNorms(fresh.attn, t, heads), t, heads, 2);
    const randomHeads = recall(topRows(normals(new Random(2), t * heads), t, heads, 2), headTruth);
    const heads_ = recall(topRows(headKept, t, heads, 2), headTruth);
    expect(heads_).toBeGreaterThan(randomHeads + 0.25);

    run(sps.get(blk.sites.gate.name)!, fresh.h, t);
    const a = run(sps.get(blk.sites.act.name)!, fresh.act, t);
    const k = keepCount(0.25, hidden);
    expect(a.kept).toBe(t * k);
    const truth = topRows(Float64Array.from(fresh.act, Math.abs), t, hidden, k);
    const randomNeurons = recall(topRows(normals(new Random(3), t * hidden), t, hidden, k), truth);
    expect(recall(keptSet(a.y, t, hidden), truth)).toBeGreaterThan(randomNeurons + 0.25);
  });

  it('state round trip and order errors', () => {
    const m = getActivationMethod('polar');
    const cfg = m.schema.safeParse(config).data as never;
    const sps = calibrateActivation('polar', config, blk.samples);
    const states = JSON.parse(JSON.stringify(sps.map((s) => s.state()))) as unknown[];
    const sites = blk.samples.filter((s) => m.acts(cfg, s.site)).map((s) => s.site);
    const restored = bySite(sites.map((site, i) => m.restore(cfg, site, states[i])));
    const orig = bySite(sps);
    const fresh = blk.data(9);
    for (const map of [orig, restored]) {
      run(map.get(blk.sites.q.name)!, fresh.h, 9);
      run(map.get(blk.sites.gate.name)!, fresh.h, 9);
    }
    expect(run(restored.get(blk.sites.o.name)!, fresh.attn, 9).y).toEqual(run(orig.get(blk.sites.o.name)!, fresh.attn, 9).y);
    expect(run(restored.get(blk.sites.act.name)!, fresh.act, 9).y).toEqual(run(orig.get(blk.sites.act.name)!, fresh.act, 9).y);
    expect(() => run(restored.get(blk.sites.o.name)!, fresh.attn, 9)).toThrow(/no prediction recorded/);
  });

  it('rejects an attention width that is not a multiple of heads, and unmatched layers', () => {
    expect(() => calibrateActivation('polar', { attention: { heads: 3 } }, blk.samples)).toThrow(ShapeError);
    const noAct = blk.samples.filter((s) => s.site.role !== 'mlp.act');
    expect(() => calibrateActivation('polar', { mlp: {} }, noAct)).toThrow(/no 'mlp.act' sample/);
  });
});
