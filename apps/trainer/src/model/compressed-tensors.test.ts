// compressed-tensors export: our writer equals the hand-built golden files byte for byte, our reader
// reads them, and exports round-trip through loadExportedModel (up to the 16-bit rounding).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cast, parseSafetensors, tensor } from '@sparse/tensor';
import { resolveRecipe } from '../recipe/index.js';
import { startRun } from '../run/runner.js';
import { loadExportedModel } from '../stages/export.js';
import { FIXTURE_PARAMS, sparse24Fp16, sparseBitmaskBf16 } from './__fixtures__/compressed-tensors.js';
import {
  pythonFloat,
  readCompressedTensors,
  serializeCompressedTensors,
  writeCompressedTensors,
  type CompressedTensorsDType,
  type CompressedTensorsFormat,
  type CompressedTensorsParam,
} from './compressed-tensors.js';
import type { LanguageModel } from './types.js';

const fixtureDir = join(import.meta.dirname, '__fixtures__', 'compressed-tensors');
const params: CompressedTensorsParam[] = FIXTURE_PARAMS.map((p) => ({ ...p, values: Float32Array.from(p.values) }));
const CASES = [
  { name: 'sparse-24-bitmask-fp16', format: 'sparse-24-bitmask' as const, dtype: 'float16' as const, build: sparse24Fp16 },
  { name: 'sparse-bitmask-bf16', format: 'sparse-bitmask' as const, dtype: 'bfloat16' as const, build: sparseBitmaskBf16 },
];

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-ct-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What 16-bit storage makes of fp32 values. */
const rounded = (v: Float32Array, dtype: CompressedTensorsDType) => cast(cast(tensor(v, [v.length]), dtype), 'float32').data as Float32Array;

describe.each(CASES)('golden file $name', ({ name, format, dtype, build }) => {
  const golden = build();

  it('the committed files are the fixture script output', () => {
    const dir = join(fixtureDir, name);
    if (process.env.UPDATE_FIXTURES === '1') {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'model.safetensors'), golden.safetensors);
      writeFileSync(join(dir, 'config.json'), golden.config);
    }
    expect(new Uint8Array(readFileSync(join(dir, 'model.safetensors')))).toEqual(golden.safetensors);
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe(golden.config);
  });

  it('our writer produces the same bytes and config.json', () => {
    const ours = serializeCompressedTensors(params, { format, dtype });
    expect(ours.safetensors).toEqual(golden.safetensors);
    expect(ours.configJSON).toBe(golden.config);
    expect(JSON.parse(ours.configJSON)).toEqual({
      quantization_config: {
        quant_method: 'compressed-tensors',
        version: '0.12.2',
        transform_config: {},
        sparsity_config: { format, global_sparsity: 0.625, ignore: [], sparsity_structure: format === 'sparse-24-bitmask' ? '2:4' : 'unstructured', targets: ['layers.0.mlp.up', 'layers.0.mlp.down'] },
      },
    });
  });

  it('writeCompressedTensors writes the same two files', async () => {
    const out = await writeCompressedTensors(join(tmp, `write-${name}`), params, { format, dtype });
    expect(new Uint8Array(readFileSync(out.modelPath))).toEqual(golden.safetensors);
    expect(readFileSync(out.configPath, 'utf8')).toBe(golden.config);
    expect([out.modelBytes, out.configBytes]).toEqual([golden.safetensors.length, golden.config.length]);
  });

  it('our reader decompresses the golden file to the dense weights', async () => {
    const dir = join(tmp, `golden-${name}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.safetensors'), golden.safetensors);
    const { tensors, metadata } = await readCompressedTensors(join(dir, 'model.safetensors'), format);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()].sort()).toEqual(FIXTURE_PARAMS.map((p) => p.name).sort());
    for (const p of FIXTURE_PARAMS) {
      const t = tensors.get(p.name)!;
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual(p.shape);
      expect(Array.from(cast(t, 'float32').data as Float32Array)).toEqual(p.values);
    }
  });
});

describe('writer and reader', () => {
  it('writes Python float reprs', () => {
    expect([0, 0.625, 0.5, 1, 1 / 3, 1e-4, 1.5e-5, 1e-7].map(pythonFloat)).toEqual(['0.0', '0.625', '0.5', '1.0', '0.3333333333333333', '0.0001', '1.5e-05', '1e-07']);
  });

  it('refuses a group of 4 with 3 non-zeros in sparse-24-bitmask', () => {
    const bad: CompressedTensorsParam = { name: 'w.weight', shape: [1, 4], values: Float32Array.from([1, 2, 3, 0]), target: true };
    expect(() => serializeCompressedTensors([bad], { format: 'sparse-24-bitmask', dtype: 'float16' })).toThrow(/3 non-zeros/);
  });

  it('rejects a file whose bitmask marks more elements than .compressed holds', async () => {
    const bytes = sparse24Fp16().safetensors;
    // the last data byte is up.bitmask row 1 (0x33); one more bit set
    bytes[bytes.length - 1] = 0x37;
    const dir = join(tmp, 'corrupt');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    await expect(readCompressedTensors(join(dir, 'model.safetensors'), 'sparse-24-bitmask')).rejects.toThrow(/marks 9 elements but layers\.0\.mlp\.up\.compressed holds 8/);
  });

  it.each([
    ['sparse-24-bitmask', 'float16'],
    ['sparse-24-bitmask', 'bfloat16'],
    ['sparse-bitmask', 'float16'],
    ['sparse-bitmask', 'bfloat16'],
  ] as [CompressedTensorsFormat, CompressedTensorsDType][])('%s in %s round-trips fp32 weights to their 16-bit rounding', async (format, dtype) => {
    // a 2:4 weight (values that do not fit 16 bits exactly, and some that underflow to zero in fp16)
    let s = 7;
    const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
    const rows = 6;
    const cols = 20;
    const w = new Float32Array(rows * cols);
    for (let g = 0; g < w.length; g += 4) {
      const a = Math.floor((next() + 0.5) * 4);
      const b = (a + 1 + Math.floor((next() + 0.5) * 3)) % 4;
      w[g + a] = next() * 3.1;
      w[g + b] = g % 24 === 0 ? 1e-9 : next();
    }
    const ps: CompressedTensorsParam[] = [
      { name: 'blk.proj.weight', shape: [rows, cols], values: w, target: true },
      { name: 'blk.bias', shape: [3], values: Float32Array.from([0.1, -7.3, 1e-3]), target: false },
    ];
    const dir = join(tmp, `rt-${format}-${dtype}`);
    const out = await writeCompressedTensors(dir, ps, { format, dtype });
    expect(existsSync(out.configPath)).toBe(true);
    const { tensors } = await readCompressedTensors(out.modelPath, format);
    for (const p of ps) expect(cast(tensors.get(p.name)!, 'float32').data).toEqual(rounded(p.values, dtype));
  });
});

describe('export stage', () => {
  const model = { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 } as const;
  const silent = { write: () => true };
  const params = (m: LanguageModel) => new Map(Object.entries(m.params).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));

  it.each([
    { label: '2:4', prune: { n: 2, m: 4 }, dtype: 'float16', format: 'sparse-24-bitmask' },
    { label: '50%', prune: { sparsity: 0.5 }, dtype: 'bfloat16', format: 'sparse-bitmask' },
    { label: '4:8', prune: { n: 4, m: 8 }, dtype: 'bfloat16', format: 'sparse-bitmask' },
  ])('$label model: compressed-tensors ($format) and our compressed file load back as the dense export', async ({ label, prune, dtype, format }) => {
    const dir = join(tmp, `run-${label.replace(/\W/g, '')}`);
    const recipe = resolveRecipe({
      model,
      eval: { windows: 4 },
      stages: [
        { stage: 'pretrain', steps: 2, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: prune },
        { stage: 'export', formats: ['compressed', 'dense', 'compressed-tensors'], dtype },
      ],
    });
    const summary = await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
    expect(summary).toBeDefined();
    const cfg = JSON.parse(readFileSync(join(dir, 'exports', 'compressed-tensors', 'config.json'), 'utf8'));
    expect(cfg.quantization_config.sparsity_config.format).toBe(format);
    expect(cfg.quantization_config.sparsity_config.targets.length).toBeGreaterThan(0);
    const dense = await loadExportedModel(join(dir, 'exports', 'model.safetensors'));
    const ours = await loadExportedModel(join(dir, 'exports', 'model.compressed.safetensors'));
    // the folder, or its model.safetensors (config.json beside it)
    const ct = await loadExportedModel(join(dir, 'exports', 'compressed-tensors', ...(label === '2:4' ? [] : ['model.safetensors'])));
    try {
      const want = params(dense);
      const zeros = [...want.values()].reduce((n, v) => n + v.filter((x) => x === 0).length, 0);
      expect(zeros).toBeGreaterThan(0);
      for (const m of [ours, ct]) {
        const got = params(m);
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
      }
    } finally {
      for (const m of [dense, ours, ct]) m.dispose();
    }
    const sizes = Object.fromEntries(
      ['model.safetensors', 'model.compressed.safetensors', join('compressed-tensors', 'model.safetensors')].map((f) => [f, readFileSync(join(dir, 'exports', f)).length]),
    );
    console.log(`export sizes, ${label} model (${dtype}): ${JSON.stringify(sizes)}`);
    // our layout stays the default because it is the smaller file: for 2:4 the payloads are the
    // same size, so this holds only while our per-layer entry is shorter than compressed-tensors'
    expect(sizes['model.compressed.safetensors']).toBeLessThan(sizes[join('compressed-tensors', 'model.safetensors')]!);
    // each pruned weight takes its smallest layout: N:M for 2:4 (2 index bits per kept value, as
    // many bits as a bitmask), the bitmask for 4:8 (3 index bits per kept value, 1.5 per weight)
    const header = parseSafetensors(readFileSync(join(dir, 'exports', 'model.compressed.safetensors'))).metadata;
    const formats = new Set(Object.entries(header).filter(([key]) => key.startsWith('sparse.')).map(([, v]) => JSON.parse(v).format));
    expect([...formats]).toEqual([{ '2:4': 'nm', '4:8': 'bitmask', '50%': 'bitmask' }[label]]);
  }, 120_000);
});
