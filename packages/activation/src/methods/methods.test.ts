// Every method of src/methods through the registry: listed with a describe that names its paper, the
// config parsed and the sites filtered by calibrateActivation, and state -> restore giving identical outputs.
import { ConfigError, provenanceProblems, Random, UnknownNameError } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { activationMethods, calibrateActivation, getActivationMethod } from '../registry.js';
import type { SiteSample } from '../types.js';
import { actSite, linearSite, normalActs, sampleOf, weightOf } from './testing.js';

const METHODS: Record<string, { paper: RegExp; config: object }> = {
  'top-k': { paper: /Li et al\. 2023/, config: { sparsity: 0.6, roles: ['mlp.act', 'mlp.down'] } },
  cats: { paper: /CATS, Lee et al\. 2024/, config: { sparsity: 0.6 } },
  teal: { paper: /TEAL, Liu et al\. 2024/, config: { sparsity: 0.4 } },
  wina: { paper: /WINA, Chen et al\. 2025/, config: { sparsity: 0.4 } },
  'r-sparse': { paper: /R-Sparse, Zhang et al\. 2025/, config: { sparsity: 0.4, rank: 3 } },
  nm: { paper: /Grimaldi et al\. 2023/, config: { n: 2, m: 4 } },
};

/** One block of a small model: attention qkv and out inputs, MLP up, activation and down. */
function modelSamples(rng: Random): SiteSample[] {
  const lin = (name: string, role: string, f: number, out: number) => {
    const site = linearSite(name, role, f, out);
    return sampleOf(site, normalActs(rng, 24, f), weightOf(rng, out, f, () => Math.exp(rng.normal())));
  };
  return [
    lin('h.0.attn.c_attn.weight', 'attn.qkv', 16, 48),
    lin('h.0.attn.c_proj.weight', 'attn.out', 16, 16),
    lin('h.0.mlp.c_fc.weight', 'mlp.up', 16, 32),
    sampleOf(actSite(0, 32), normalActs(rng, 24, 32)),
    lin('h.0.mlp.c_proj.weight', 'mlp.down', 32, 16),
  ];
}

describe('the activation methods', () => {
  it('are registered with a describe naming the paper and saying how it departs', () => {
    for (const [name, { paper }] of Object.entries(METHODS)) {
      const m = getActivationMethod(name);
      expect(activationMethods.list()).toContain(name);
      expect(m.describe).toMatch(paper);
      expect(m.describe).toMatch(/instead|not |no |only|here|without|exact/);
    }
    expect(() => getActivationMethod('teel')).toThrow(UnknownNameError);
    expect(() => getActivationMethod('teel')).toThrow(/did you mean 'teal'/);
  });

  it('every registered method names its paper and lists its departures (paper, differs)', () => {
    expect(provenanceProblems(activationMethods.entries())).toEqual([]);
    expect(getActivationMethod('teal').paper).toMatch(/^Liu et al\. 2024, /);
    expect(getActivationMethod('teal').differs).toHaveLength(2);
  });

  it.each(Object.keys(METHODS))('%s: calibrates only the sites it acts on and restores from JSON state exactly', (name) => {
    const rng = new Random(name.length);
    const samples = modelSamples(rng);
    const m = getActivationMethod(name);
    const config = activationMethods.parse(name, METHODS[name]!.config);
    const sps = calibrateActivation(name, METHODS[name]!.config, samples);
    const acted = samples.filter((s) => m.acts(config, s.site));
    expect(acted.length).toBeGreaterThan(0);
    expect(sps.map((s) => s.site)).toEqual(acted.map((s) => s.site.name));
    sps.forEach((sp, i) => {
      const s = acted[i]!;
      const back = m.restore(config, s.site, JSON.parse(JSON.stringify(sp.state())), m.needs.includes('weight') ? s.weight : undefined);
      const x = normalActs(rng, 7, s.site.features);
      const a = x.slice();
      const b = x.slice();
      expect(back.apply(b, 7)).toBe(sp.apply(a, 7));
      expect(b).toEqual(a);
      expect(Array.from(a).filter((v) => v === 0).length).toBeGreaterThan(0);
      if (sp.correction) expect(back.correction!(x, b, 7)).toEqual(sp.correction(x, a, 7));
    });
  });

  it('calibrateActivation refuses a bad config with a ConfigError naming the method and field', () => {
    expect(() => calibrateActivation('cats', { sparsity: 2 }, [])).toThrow(ConfigError);
    expect(() => calibrateActivation('cats', { sparsity: 2 }, [])).toThrow(/cats: invalid config: sparsity/);
    expect(() => calibrateActivation('wina', { roles: [] }, [])).toThrow(/roles/);
  });
});
