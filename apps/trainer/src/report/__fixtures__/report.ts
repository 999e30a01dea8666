// A report with every part filled, shared by the report tests.
import type { ReportData } from '../types.js';

/** Numbers chosen so the expected table values can be worked out by hand (see html.test.ts). */
export function fullReport(): ReportData {
  return {
    name: 'tiny-gpt 2:4 run',
    created: '2026-11-29T04:00:00.000Z',
    backend: 'cpu',
    model: { architecture: 'gpt', params: 812_544, details: { layers: 4, dim: 128, heads: 4 } },
    recipe: { model: { architecture: 'gpt' }, stages: [{ stage: 'pretrain', steps: 600 }, { stage: 'prune', method: 'wanda', config: { n: 2, m: 4 } }] },
    stages: [
      { index: 0, kind: 'pretrain', method: 'dense', ms: 93_500, summary: '600 steps' },
      { index: 1, kind: 'prune', method: 'wanda', ms: 820, summary: '2:4 on 24 layers' },
      { index: 2, kind: 'adapt', method: 'lora', ms: 12_340 },
    ],
    lossCurves: [
      { label: 'pretrain', points: [0, 100, 200, 300].map((step, i) => ({ step, loss: 4 - i * 0.9 })) },
      { label: 'adapt (lora)', points: [0, 50, 100].map((step, i) => ({ step, loss: 1.6 - i * 0.2 })) },
    ],
    evaluations: [
      { label: 'after pretrain', perplexity: 5.4321, loss: 1.6923, tokens: 16_384 },
      { label: 'after prune', perplexity: 7.8911, loss: 2.0656, tokens: 16_384 },
      { label: 'after adapt', perplexity: 5.9876, loss: 1.7897, tokens: 16_384 },
    ],
    layers: [
      { name: 'blocks.0.attn.qkv', shape: [384, 128], sparsity: 0.5, nm: { n: 2, m: 4, valid: true, violations: 0 }, rowBlockSparsity: [0.5, 0.5, 0.5, 0.5] },
      { name: 'blocks.0.mlp.up', shape: [512, 128], sparsity: 0.4375, nm: { n: 2, m: 4, valid: false, violations: 17 }, rowBlockSparsity: [0.25, 0.5, 0.5, 0.5] },
      { name: 'head', shape: [64, 128], sparsity: 0 },
    ],
    adapters: [
      { name: 'blocks.0.attn.qkv', variant: 'lora', trainable: 4096, base: 49_152 },
      { name: 'blocks.0.mlp.up', variant: 'dora', trainable: 5_632, base: 65_536 },
    ],
    files: [
      { label: 'checkpoint', path: 'runs/x/model.safetensors', bytes: 1_700_000, denseBytes: 3_250_176 },
      { label: 'tokenizer', path: 'runs/x/tokenizer.json', bytes: 1_234 },
    ],
    notes: ['pruned with 64 calibration windows'],
  };
}
