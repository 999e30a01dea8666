import { describe, expect, it } from 'vitest';
import { configFields, listMethods, parseRecipeText, RecipeError, resolveRecipe } from './index.js';

function problemsOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RecipeError);
    return (err as RecipeError).problems;
  }
  throw new Error('expected a RecipeError');
}

const yaml = `
name: demo
seed: 3
stages:
  - stage: pretrain
    steps: 10
  - stage: prune
    method: sparsegpt
    config: { n: 2, m: 4 }
  - stage: adapt
    method: sqft
    config: { r: 4 }
  - stage: evaluate
`;

describe('recipes', () => {
  it('resolve with every default filled in, method configs parsed by their own schemas', () => {
    const r = resolveRecipe(parseRecipeText(yaml, 'demo.yaml'), { source: 'demo.yaml' });
    expect(r.name).toBe('demo');
    expect(r.seed).toBe(3);
    expect(r.model).toEqual({ architecture: 'gpt' });
    expect(r.data.source).toBe('embedded');
    expect(r.stages.map((s) => s.stage)).toEqual(['pretrain', 'prune', 'adapt', 'evaluate']);
    const pre = r.stages[0] as { steps: number; batch: number; lr: number; method: string };
    expect(pre).toMatchObject({ steps: 10, batch: 8, lr: 1e-2, method: 'dense' });
    const prune = r.stages[1] as { config: Record<string, unknown>; sequential: boolean };
    expect(prune.config).toMatchObject({ n: 2, m: 4 });
    // SparseGPT's defaults filled in by its schema
    expect(prune.config).toMatchObject({ percdamp: 0.01, blocksize: 128 });
    expect(prune.sequential).toBe(true);
    const adapt = r.stages[2] as { config: Record<string, unknown> };
    expect(adapt.config).toMatchObject({ r: 4, alpha: 8, rslora: false });
  });

  it('name the path of a bad method config field', () => {
    const p = problemsOf(() => resolveRecipe({ stages: [{ stage: 'pretrain' }, { stage: 'evaluate' }, { stage: 'prune', method: 'wanda', config: { sparsity: 1.5 } }] }));
    expect(p).toHaveLength(1);
    expect(p[0]!.path).toBe('stages[2].config.sparsity');
    expect(p[0]!.message).toMatch(/\[0, 1\)/);
  });

  it('suggest the closest known methods for an unknown one', () => {
    const p = problemsOf(() => resolveRecipe({ stages: [{ stage: 'prune', method: 'sparsgpt' }] }));
    expect(p[0]!.path).toBe('stages[0].method');
    expect(p[0]!.message).toMatch(/did you mean 'sparsegpt'/);
    expect(p[0]!.message).toMatch(/known: .*wanda/);
  });

  it('report every problem at once: unknown kinds, misspelt fields, wrong types', () => {
    const p = problemsOf(() =>
      resolveRecipe({
        seed: -1,
        stages: [{ stage: 'pretrian' }, { stage: 'train', stpes: 5 }, { stage: 'adapt', method: 'lora', steps: 'ten' }],
      }),
    );
    const paths = p.map((x) => x.path);
    expect(paths).toContain('seed');
    expect(paths).toContain('stages[0].stage');
    expect(p.find((x) => x.path === 'stages[0].stage')!.message).toMatch(/did you mean 'pretrain'/);
    expect(p.find((x) => x.path === 'stages[1]')!.message).toMatch(/unknown field 'stpes' \(did you mean 'steps'\?\)/);
    expect(paths).toContain('stages[2].steps');
  });

  it('name a bad adapter config field and a missing data path', () => {
    const p = problemsOf(() => resolveRecipe({ stages: [{ stage: 'adapt', method: 'lora', config: { rank: 4 } }] }));
    expect(p[0]!.path).toBe('stages[0].config');
    expect(p[0]!.message).toMatch(/rank/);
    const d = problemsOf(() => resolveRecipe({ data: { source: 'text' }, stages: [{ stage: 'evaluate' }] }));
    expect(d[0]!.path).toBe('data.path');
  });

  it('name a config field by its name before the naming pass (cadences, densities, axes)', () => {
    const old: Array<[Record<string, unknown>, RegExp]> = [
      [{ stage: 'adapt', method: 'sft', config: { regrowEvery: 50 } }, /regrowEvery/],
      [{ stage: 'adapt', method: 'losia', config: { relocalizeEvery: 2 } }, /relocalizeEvery/],
      [{ stage: 'train', method: 'nm', config: { recomputeEvery: 2 } }, /recomputeEvery/],
      [{ stage: 'adapt', method: 'sparse-mezo', config: { fraction: 0.5 } }, /fraction/],
      [{ stage: 'adapt', method: 'sara', config: { fraction: 0.5 } }, /fraction/],
      [{ stage: 'adapt', method: 'roselora', config: { keepA: 0.5 } }, /keepA/],
      [{ stage: 'adapt', method: 's2ft', config: { axis: 'rows' } }, /"row"\|"column"/],
    ];
    for (const [stage, message] of old) {
      const p = problemsOf(() => resolveRecipe({ stages: [stage] }));
      expect(p[0]!.path, JSON.stringify(stage)).toMatch(/^stages\[0\]\.config/);
      expect(p[0]!.message, JSON.stringify(stage)).toMatch(message);
    }
  });

  it('name a bad model size field', () => {
    const p = problemsOf(() => resolveRecipe({ model: { architecture: 'gpt', d: 30, heads: 4 }, stages: [{ stage: 'evaluate' }] }));
    expect(p[0]!.path).toBe('model.heads');
    const q = problemsOf(() => resolveRecipe({ model: { architecture: 'gpt', depth: 3 }, stages: [{ stage: 'evaluate' }] }));
    expect(q[0]!.path).toBe('model.depth');
  });

  it('report YAML syntax errors with their line', () => {
    const p = problemsOf(() => parseRecipeText('stages:\n  - stage: pretrain\n    steps: [1, 2\n', 'bad.yaml'));
    expect(p[0]!.message).toMatch(/line \d+/);
  });

  it('resolve relative paths against the recipe folder', () => {
    const r = resolveRecipe({ data: { source: 'text', path: 'corpus.txt' }, stages: [{ stage: 'evaluate' }] }, { baseDir: '/tmp/recipes' });
    expect(r.data.path).toBe('/tmp/recipes/corpus.txt');
  });
});

describe('method catalogue', () => {
  it('lists the pruners, adapters and training modes with their config fields and defaults', () => {
    const names = listMethods().map((m) => `${m.kind}/${m.name}`);
    for (const n of ['prune/magnitude', 'prune/wanda', 'prune/sparsegpt', 'adapt/lora', 'adapt/spp', 'adapt/sqft', 'train/nm', 'distill/squarehead']) expect(names).toContain(n);
    const lora = listMethods('adapt').find((m) => m.name === 'lora')!;
    const fields = configFields(lora.schema);
    expect(fields.find((f) => f.name === 'r')).toMatchObject({ default: 8, type: expect.stringMatching(/integer/) });
    const nm = listMethods('train').find((m) => m.name === 'nm')!;
    expect(configFields(nm.schema).find((f) => f.name === 'estimator')!.type).toBe('"ste" | "sr-ste" | "progressive" | "mask-decay" | "structure-decay"');
  });
});
