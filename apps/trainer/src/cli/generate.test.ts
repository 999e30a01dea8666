// `sparse-train generate`, in process (main with captured streams): from a run folder made here, its
// export, and a Hugging Face Llama folder with a tokenizer.json; greedy output equal to argmax
// decoding through the tfjs model; failures one line with the CLI's exit codes.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '@sparse/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HFTokenizer } from '../data/hf-tokenizer.js';
import { tinyBpe } from '../data/__fixtures__/tiny-bpe.js';
import { saveHFCheckpoint } from '../model/hf.js';
import { createModel, paramShapes } from '../model/index.js';
import type { ForwardHooks, LanguageModel, ModelSpec } from '../model/types.js';
import { restoreSparsifiers } from '../methods/activation/sparsify.js';
import { sparsifyTensor } from '@sparse/activation/tfjs';
import { readCheckpoint } from '../run/checkpoint.js';
import { resolveRecipe } from '../recipe/load.js';
import { generateTokens, loadGenerateSource, buildDecoder, runTokenizer, sampleToken, speedLine } from './generate.js';
import { cli } from '../testing/cli.js';

let tmp: string;
let runDir: string;


/** Greedy continuation of `prompt` by full recompute through the tfjs model (no cache). */
function tfGreedy(model: LanguageModel, prompt: number[], tokens: number, hooks?: ForwardHooks): number[] {
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < tokens; i++) {
    const next = tf.tidy(() => {
      const logits = model.logits2d(tf.tensor2d(ids, [1, ids.length], 'int32'), hooks);
      const v = model.spec.vocab;
      const last = (logits.dataSync() as Float32Array).subarray((ids.length - 1) * v, ids.length * v);
      let best = 0;
      for (let j = 1; j < v; j++) if (last[j]! > last[best]!) best = j;
      return best;
    });
    out.push(next);
    ids.push(next);
  }
  return out;
}

/** A run's checkpoint as a model with its activation sparsifier as tfjs hooks, and its tokenizer. */
async function sparseRunModel(dir: string): Promise<{ model: LanguageModel; hooks: ForwardHooks; tok: ReturnType<typeof runTokenizer>; spec: Record<string, unknown> }> {
  const cp = await readCheckpoint(dir);
  const model = createModel(cp.spec, { values: new Map([...cp.params].map(([k, v]) => [k, v.data])) });
  const weights = (name: string) => ({ data: cp.params.get(name)!.data, out: cp.params.get(name)!.shape[0]!, in: cp.params.get(name)!.shape[1]! });
  const sparsifiers = restoreSparsifiers(cp.activation!, model.linears(), (site) => weights(site.name), 'test');
  const hooks: ForwardHooks = {
    activation: (site, x) => {
      const sp = sparsifiers.get(site.name);
      return sp ? sparsifyTensor(sp, x) : x;
    },
  };
  const tok = runTokenizer(resolveRecipe(JSON.parse(readFileSync(join(dir, 'recipe.json'), 'utf8')) as unknown).data);
  return { model, hooks, tok, spec: cp.spec as unknown as Record<string, unknown> };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-generate-'));
  const recipe = join(tmp, 'tiny.yaml');
  writeFileSync(
    recipe,
    ['name: tiny', 'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }', 'stages:', '  - { stage: pretrain, steps: 3, batch: 4 }', '  - { stage: export, formats: [dense] }', ''].join('\n'),
  );
  runDir = join(tmp, 'run');
  const r = await cli(['--recipe', recipe, '--out', runDir, '--quiet']);
  if (r.code !== 0) throw new Error(r.stderr);
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('sparse-train generate', () => {
  it('from a run folder: greedy text equal to argmax decoding through the tfjs model, the speed on stderr', async () => {
    const r = await cli(['generate', runDir, '--prompt', 'the ', '--tokens', '12']);
    expect(r.stderr).toMatch(/^12 tokens in [\d.]+ s: [\d.]+ tokens\/s \(prefill 4 tokens [\d.]+ ms\)\n$/);
    expect(r.code).toBe(0);
    const cp = await readCheckpoint(runDir);
    const model = createModel(cp.spec, { values: new Map([...cp.params].map(([k, v]) => [k, v.data])) });
    try {
      const tok = runTokenizer(resolveRecipe(JSON.parse((await import('node:fs')).readFileSync(join(runDir, 'recipe.json'), 'utf8')) as unknown).data);
      expect(tok.kind).toBe('char');
      const want = tfGreedy(model, Array.from(tok.encode('the ')), 12);
      expect(r.stdout).toBe(`${tok.decode(want)}\n`);
    } finally {
      model.dispose();
    }
    // deterministic
    expect((await cli(['generate', runDir, '--prompt', 'the ', '--tokens', '12'])).stdout).toBe(r.stdout);
  });

  it('from the run\'s exported model.safetensors: the run\'s tokenizer, the same text', async () => {
    const a = await cli(['generate', runDir, '--prompt', 'a', '--tokens', '8', '--quiet']);
    const b = await cli(['generate', join(runDir, 'exports', 'model.safetensors'), '--prompt', 'a', '--tokens', '8', '--quiet']);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.stderr).toBe('');
    expect(b.stdout).toBe(a.stdout);
    expect(a.stdout.length).toBeGreaterThan(1);
  });

  it('samples with a temperature and top-k, reproducibly by seed; goes on past the context', async () => {
    const args = ['generate', runDir, '--prompt', 'the ', '--tokens', '40', '--temperature', '1.5', '--top-k', '5'];
    const a = await cli([...args, '--seed', '1']);
    const b = await cli([...args, '--seed', '1']);
    const c = await cli([...args, '--seed', '2']);
    expect(a.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).not.toBe(a.stdout);
    expect(a.stdout.length).toBe(41); // 40 characters and the newline
    expect(a.stderr).toMatch(/^40 tokens in .*the context filled \d+ times? and was prefilled again/);
  });

  it('writes one JSON line with --json', async () => {
    const r = await cli(['generate', runDir, '--prompt', 'the ', '--tokens', '5', '--json']);
    expect(r.code).toBe(0);
    const line = JSON.parse(r.stdout) as { event: string; tokens: number; ids: number[]; text: string };
    expect(line).toMatchObject({ event: 'generate', tokens: 5 });
    expect(line.ids).toHaveLength(5);
    expect(line.text).toHaveLength(5);
  });

  it('from a Hugging Face Llama folder with tokenizer.json; without it, an error naming the missing file', async () => {
    const tokJSON = tinyBpe();
    const vocab = 262;
    const spec: ModelSpec = { architecture: 'llama', vocab, ctx: 24, d: 16, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 24, tiedEmbeddings: false, ropeTheta: 10000, normEps: 1e-5 };
    const rng = new Random(5);
    const values = new Map<string, Float32Array>();
    for (const [name, shape] of paramShapes(spec)) values.set(name, rng.fillNormal(new Float32Array(shape.reduce((x, y) => x * y, 1)), name.includes('norm') ? 1 : 0, shape.length === 2 ? 0.5 : 0.1));
    const dir = join(tmp, 'hf-llama');
    mkdirSync(dir, { recursive: true });
    await saveHFCheckpoint(dir, spec, values);
    const missing = await cli(['generate', dir, '--prompt', 'the cat', '--tokens', '6']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/^sparse-train: .*has no tokenizer: .*tokenizer\.json is missing; put the model's tokenizer\.json beside it.*\n$/);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokJSON));
    const r = await cli(['generate', dir, '--prompt', 'the cat', '--tokens', '6', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ids: number[]; text: string };
    const model = createModel(spec, { values });
    try {
      const tok = HFTokenizer.fromFile(join(dir, 'tokenizer.json'));
      const prompt = Array.from(tok.encode('the cat'));
      expect(out.ids).toEqual(tfGreedy(model, prompt, 6));
      expect(out.text).toBe(tok.decode([...prompt, ...out.ids]).slice('the cat'.length));
    } finally {
      model.dispose();
    }
  });

  it('a bad path, a missing prompt and a generate flag elsewhere are one line each, exit 2', async () => {
    const bad = await cli(['generate', join(tmp, 'nope'), '--prompt', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^sparse-train: .*nope does not exist; give a run folder or a checkpoint[^\n]*\n$/);
    const noPrompt = await cli(['generate', runDir]);
    expect(noPrompt.code).toBe(2);
    expect(noPrompt.stderr).toMatch(/^sparse-train: generate needs --prompt/);
    const stray = await cli(['resume', runDir, '--tokens', '3']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/^sparse-train: --tokens goes with 'sparse-train generate/);
    const temp = await cli(['generate', runDir, '--prompt', 'x', '--temperature', '-1']);
    expect(temp.code).toBe(2);
    expect(temp.stderr).toMatch(/--temperature must be a number >= 0/);
    const long = await cli(['generate', runDir, '--prompt', 'the '.repeat(5)]);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/the prompt is 20 tokens; the model's context is 16/);
    const help = await cli(['--help']);
    expect(help.stdout).toMatch(/sparse-train generate <run-folder or checkpoint> --prompt/);
    for (const f of ['--prompt', '--tokens', '--temperature', '--top-k']) expect(help.stdout).toContain(f);
  });
});

describe('generate helpers', () => {
  it('sampleToken: greedy is the argmax (lowest id on ties); top-k never leaves the k largest; the limit is respected', () => {
    const rng = new Random(3);
    const logits = Float32Array.from([0.5, 2, 2, -1, 1.9, 0]);
    expect(sampleToken(logits, { temperature: 0 }, rng)).toBe(1);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(sampleToken(logits, { temperature: 5, topK: 3 }, rng));
    expect([...seen].sort()).toEqual([1, 2, 4]);
    for (let i = 0; i < 100; i++) expect(sampleToken(logits, { temperature: 1, limit: 2 }, rng)).toBeLessThan(2);
    expect(sampleToken(logits, { temperature: 0, limit: 1 }, rng)).toBe(0);
  });

  it('buildDecoder and generateTokens: the stream pieces add up to the text; the speed line', async () => {
    const source = await loadGenerateSource(runDir);
    expect(source.description).toMatch(/^run folder .* \(checkpoint after stage 2\/2\)$/);
    const decoder = buildDecoder(source);
    // the linear weights moved into the decoder
    expect([...source.values.keys()].some((k) => k.endsWith('c_fc.weight'))).toBe(false);
    const pieces: string[] = [];
    const r = generateTokens(decoder, source.tokenizer, source.tokenizer.encode('the '), { tokens: 10, temperature: 0, seed: 0, write: (s) => pieces.push(s) });
    expect(pieces.join('')).toBe(r.text);
    expect(r.ids).toHaveLength(10);
    expect(speedLine(r)).toMatch(/^10 tokens in [\d.]+ s: [\d.]+ tokens\/s \(prefill 4 tokens [\d.]+ ms\)$/);
  });

  describe('with an activation sparsifier', () => {
    let sparseRun: string;
    beforeAll(async () => {
      const recipe = join(tmp, 'sparse.yaml');
      writeFileSync(
        recipe,
        [
          'name: sparse',
          'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }',
          'stages:',
          '  - { stage: pretrain, steps: 3, batch: 4 }',
          '  - { stage: calibrate, windows: 8 }',
          '  - { stage: activation, method: top-k, config: { sparsity: 0.5, roles: [attn.qkv, attn.out, mlp.up, mlp.down] } }',
          '  - { stage: export, formats: [dense] }',
          '',
        ].join('\n'),
      );
      sparseRun = join(tmp, 'sparse-run');
      const r = await cli(['--recipe', recipe, '--out', sparseRun, '--quiet']);
      if (r.code !== 0) throw new Error(r.stderr);
    }, 180_000);

    it("decodes with the run's sparsifier: greedy text equal to the tfjs forward with it active; --dense without it", async () => {
      const r = await cli(['generate', sparseRun, '--prompt', 'the ', '--tokens', '10']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/activation sparsifier top-k on 4 sites/);
      // half of every linear input is dropped per token (ties aside): the kernel skipped about half
      const zeros = Number(/; ([\d.]+)% of linear-layer inputs were zero \(top-k\)/.exec(r.stderr)?.[1]);
      expect(zeros).toBeGreaterThan(45);
      expect(zeros).toBeLessThan(55);
      const { model, hooks, tok } = await sparseRunModel(sparseRun);
      try {
        const prompt = Array.from(tok.encode('the '));
        expect(r.stdout).toBe(`${tok.decode(tfGreedy(model, prompt, 10, hooks))}\n`);
        const dense = await cli(['generate', sparseRun, '--prompt', 'the ', '--tokens', '10', '--dense']);
        expect(dense.code).toBe(0);
        expect(dense.stderr).not.toMatch(/sparsifier/);
        expect(dense.stdout).toBe(`${tok.decode(tfGreedy(model, prompt, 10))}\n`);
      } finally {
        model.dispose();
      }
      // the export beside its activation.json decodes the same; --activation names the file explicitly
      const exported = join(sparseRun, 'exports', 'model.safetensors');
      expect((await cli(['generate', exported, '--prompt', 'the ', '--tokens', '10'])).stdout).toBe(r.stdout);
      expect((await cli(['generate', runDir, '--prompt', 'the ', '--tokens', '10', '--activation', join(sparseRun, 'exports', 'activation.json')])).stderr).toMatch(/activation sparsifier top-k/);
    });

    it('a run rotated by WINA\'s transform decodes its rotated model with its sparsifier: the tfjs forward\'s greedy text', async () => {
      const recipe = join(tmp, 'rotated.yaml');
      writeFileSync(
        recipe,
        [
          'name: rotated',
          'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }',
          'stages:',
          '  - { stage: pretrain, steps: 3, batch: 4 }',
          '  - { stage: calibrate, windows: 8 }',
          '  - { stage: activation, method: wina, rotate: true, config: { sparsity: 0.5, roles: [attn.qkv, mlp.up] } }',
          '  - { stage: export, formats: [dense] }',
          '',
        ].join('\n'),
      );
      const dir = join(tmp, 'rotated-run');
      const made = await cli(['--recipe', recipe, '--out', dir, '--quiet']);
      expect(made.code, made.stderr).toBe(0);
      const r = await cli(['generate', join(dir, 'exports', 'model.safetensors'), '--prompt', 'the ', '--tokens', '10']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/activation sparsifier wina on 2 sites/);
      const { model, hooks, tok, spec } = await sparseRunModel(dir);
      expect(spec.normRotation).toBe(true);
      try {
        expect(r.stdout).toBe(`${tok.decode(tfGreedy(model, Array.from(tok.encode('the ')), 10, hooks))}\n`);
      } finally {
        model.dispose();
      }
    }, 180_000);

    it('a bad --activation file is one line with exit 2; --dense and --activation together are refused', async () => {
      const bad = join(tmp, 'bad-activation.json');
      writeFileSync(bad, '{"format": "something else"}');
      const r = await cli(['generate', sparseRun, '--prompt', 'a', '--activation', bad]);
      expect(r.code).toBe(2);
      // the problem on one line (then the usage hint every flag error gets), no stack trace
      expect(r.stderr.trim().split('\n')[0]).toMatch(/bad-activation\.json is not an activation sparsifier file/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const both = await cli(['generate', sparseRun, '--prompt', 'a', '--activation', bad, '--dense']);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/--dense/);
    });
  });
});
