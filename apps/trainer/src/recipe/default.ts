// The embedded default run (what `sparse-train` does with no arguments), also shipped as
// recipes/default.yaml: pretrain the small GPT on the generated corpus, prune it to 2:4 with
// SparseGPT, recover with SQFT (a LoRA merged through the 2:4 mask, so the pattern survives),
// measure each step, export dense and compressed weights, and write the report.

export const DEFAULT_RECIPE = {
  name: 'default',
  description: 'pretrain -> SparseGPT 2:4 -> SQFT recovery (mask-preserving merge) -> export -> report, on the embedded corpus',
  seed: 0,
  model: { architecture: 'gpt', d: 32, layers: 2, heads: 4, ctx: 32 },
  stages: [
    { stage: 'pretrain', steps: 600, lr: 0.01 },
    { stage: 'evaluate', name: 'dense' },
    { stage: 'calibrate', windows: 64 },
    { stage: 'prune', method: 'sparsegpt', config: { n: 2, m: 4 } },
    { stage: 'evaluate', name: 'pruned 2:4' },
    { stage: 'adapt', name: 'sqft recovery', method: 'sqft', config: { r: 8, alpha: 16 }, steps: 200, lr: 0.005 },
    { stage: 'evaluate', name: 'recovered' },
    { stage: 'export' },
    { stage: 'report' },
  ],
} as const;
