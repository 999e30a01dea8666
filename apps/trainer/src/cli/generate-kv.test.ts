// `sparse-train generate` with a pruned KV cache: --kv-sparsity, a run's mustafar attention record
// (exports/attention.json beside the model) applied by default and turned off by --dense; greedy text
// equal to argmax decoding through the Decoder with the same kv option; the cache bytes on stderr.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder, type DecoderKVOptions } from '../model/decode.js';
import { generateKVOptions, kvLine, loadGenerateSource } from './generate.js';
import { cli } from '../testing/cli.js';

let tmp: string;
let runDir: string;


const PROMPT = 'the ';
const TOKENS = 12;

/** Greedy text after PROMPT from the run's model through a Decoder built here (argmax among the tokenizer's ids). */
async function greedy(path: string, kv?: DecoderKVOptions): Promise<{ text: string; bytes: number; denseBytes: number }> {
  const source = await loadGenerateSource(path);
  const dec = Decoder.fromValues(source.spec, source.values, kv ? { kv } : {});
  const prompt = Array.from(source.tokenizer.encode(PROMPT));
  const limit = Math.min(dec.vocab, source.tokenizer.vocabSize);
  const ids: number[] = [];
  let logits = dec.prefill(prompt);
  for (let i = 0; i < TOKENS; i++) {
    let best = 0;
    for (let j = 1; j < limit; j++) if (logits[j]! > logits[best]!) best = j;
    ids.push(best);
    if (i < TOKENS - 1) logits = dec.step(best);
  }
  const all = source.tokenizer.decode([...prompt, ...ids]);
  const s = dec.kvStats();
  return { text: all.slice(source.tokenizer.decode(prompt).length), bytes: s.bytes, denseBytes: s.denseBytes };
}

function writeAttention(dir: string, method: string, config: Record<string, unknown>): string {
  const path = join(dir, 'attention.json');
  writeFileSync(path, `${JSON.stringify({ format: 'sparse-attention/1', method, config, state: {} })}\n`);
  return path;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-generate-kv-'));
  const recipe = join(tmp, 'tiny.yaml');
  writeFileSync(
    recipe,
    ['name: tiny', 'model: { architecture: gpt, d: 16, layers: 2, heads: 2, ctx: 16 }', 'stages:', '  - { stage: pretrain, steps: 20, batch: 4 }', '  - { stage: export, formats: [dense] }', ''].join('\n'),
  );
  runDir = join(tmp, 'run');
  const r = await cli(['--recipe', recipe, '--out', runDir, '--quiet']);
  if (r.code !== 0) throw new Error(r.stderr);
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('sparse-train generate with a pruned KV cache', () => {
  it('--kv-sparsity: the greedy text of the Decoder with the same kv option; the cache bytes against dense on stderr', async () => {
    const r = await cli(['generate', runDir, '--prompt', PROMPT, '--tokens', String(TOKENS), '--kv-sparsity', '0.5']);
    expect(r.code).toBe(0);
    const want = await greedy(runDir, { sparsity: 0.5 });
    expect(r.stdout).toBe(`${want.text}\n`);
    const m = /; KV cache ([\d.]+) KiB vs ([\d.]+) KiB dense \(50\.0% pruned\)\n$/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(Number(m![2]));
    expect(want.bytes).toBeLessThan(want.denseBytes);
    expect(r.stderr).toMatch(/^12 tokens in [\d.]+ s: [\d.]+ tokens\/s \(prefill 4 tokens [\d.]+ ms\); KV cache/);
  });

  it('--json: a kv field with the bytes', async () => {
    const r = await cli(['generate', runDir, '--prompt', PROMPT, '--tokens', String(TOKENS), '--kv-sparsity', '0.5', '--json']);
    expect(r.code).toBe(0);
    const line = JSON.parse(r.stdout) as { text: string; kv: { bytes: number; denseBytes: number; sparsity: number; positions: number; from: string } };
    expect(line.text).toBe((await greedy(runDir, { sparsity: 0.5 })).text);
    expect(line.kv.bytes).toBeLessThan(line.kv.denseBytes);
    expect(line.kv.sparsity).toBe(0.5);
    expect(line.kv.positions).toBe(PROMPT.length + TOKENS - 1);
    expect(line.kv.from).toBe('--kv-sparsity');
  });

  it("a run's mustafar attention record prunes by default; --dense turns it off; another method does not prune", async () => {
    const exports = join(runDir, 'exports');
    const path = writeAttention(exports, 'mustafar', { kSparsity: 0.25, vSparsity: 0.75 });
    try {
      const r = await cli(['generate', runDir, '--prompt', PROMPT, '--tokens', String(TOKENS)]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${(await greedy(runDir, { kSparsity: 0.25, vSparsity: 0.75 })).text}\n`);
      expect(r.stderr).toContain(`KV cache pruned (mustafar, K 0.25 / V 0.75), from ${path} (--dense decodes without it)`);
      expect(r.stderr).toMatch(/\(50\.0% pruned\)\n$/);
      // the exported model file with the record beside it: the same
      const f = await cli(['generate', join(exports, 'model.safetensors'), '--prompt', PROMPT, '--tokens', String(TOKENS)]);
      expect(f.code).toBe(0);
      expect(f.stdout).toBe(r.stdout);
      // --kv-sparsity overrides the record
      const o = await cli(['generate', runDir, '--prompt', PROMPT, '--tokens', String(TOKENS), '--kv-sparsity', '0', '--json']);
      expect((JSON.parse(o.stdout) as { kv: { sparsity: number } }).kv.sparsity).toBe(0);
      const d = await cli(['generate', runDir, '--prompt', PROMPT, '--tokens', String(TOKENS), '--dense']);
      expect(d.code).toBe(0);
      expect(d.stdout).toBe(`${(await greedy(runDir)).text}\n`);
      expect(d.stderr).not.toContain('KV cache');
      writeAttention(exports, 'sparge', {});
      const s = await cli(['generate', runDir, '--prompt', PROMPT, '--tokens', String(TOKENS)]);
      expect(s.code).toBe(0);
      expect(s.stderr).not.toContain('KV cache');
      expect(s.stderr).toContain("the run's attention method sparge");
      expect(s.stdout).toBe(d.stdout);
    } finally {
      rmSync(path, { force: true });
    }
  });

  it("a run whose attention stage is mustafar: its checkpoint's record prunes by default", async () => {
    const recipe = join(tmp, 'mustafar.yaml');
    writeFileSync(
      recipe,
      [
        'name: mustafar',
        'model: { architecture: gpt, d: 16, layers: 2, heads: 2, ctx: 16 }',
        'stages:',
        '  - { stage: pretrain, steps: 20, batch: 4 }',
        '  - { stage: attention, method: mustafar, config: { sparsity: 0.5 } }',
        '  - { stage: export, formats: [dense] }',
        '',
      ].join('\n'),
    );
    const dir = join(tmp, 'mustafar-run');
    const made = await cli(['--recipe', recipe, '--out', dir, '--quiet']);
    expect(made.code, made.stderr).toBe(0);
    const r = await cli(['generate', dir, '--prompt', PROMPT, '--tokens', String(TOKENS)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/KV cache pruned \(mustafar, K 0\.5 \/ V 0\.5\), from the run's checkpoint/);
    expect(r.stderr).toMatch(/\(50\.0% pruned\)\n$/);
    expect(r.stdout).toBe(`${(await greedy(dir, { sparsity: 0.5 })).text}\n`);
    // its exported model: the attention.json beside it
    const f = await cli(['generate', join(dir, 'exports', 'model.safetensors'), '--prompt', PROMPT, '--tokens', String(TOKENS)]);
    expect(f.stdout).toBe(r.stdout);
    expect(f.stderr).toMatch(/exports\/attention\.json/);
  }, 120_000);

  it('generateKVOptions and kvLine', () => {
    expect(generateKVOptions({ dense: true, kvSparsity: 0.5 }, {})).toBeUndefined();
    expect(generateKVOptions({ dense: false, kvSparsity: 0.5 }, { attention: { method: 'mustafar', config: {}, from: 'x' } })).toEqual({ kv: { sparsity: 0.5 }, from: '--kv-sparsity' });
    expect(generateKVOptions({ dense: false }, { attention: { method: 'mustafar', config: {}, from: 'x' } })).toEqual({ kv: { kSparsity: 0.5, vSparsity: 0.5 }, from: 'x' });
    expect(generateKVOptions({ dense: false }, { attention: { method: 'seer', config: {}, from: 'x' } })).toBeUndefined();
    expect(() => generateKVOptions({ dense: false }, { attention: { method: 'mustafar', config: { sparsity: 2 }, from: 'x' } })).toThrow(/mustafar attention config of x is not valid/);
    expect(kvLine({ positions: 4, bytes: 1536, denseBytes: 4096, sparsity: 0.5 })).toBe('; KV cache 1.5 KiB vs 4.0 KiB dense (50.0% pruned)');
  });

  it('bad --kv-sparsity values and --dense with --kv-sparsity are flag errors, exit 2', async () => {
    for (const [args, re] of [
      [['--kv-sparsity', '1'], /--kv-sparsity must be a number in \[0, 1\), got '1'/],
      [['--kv-sparsity', 'half'], /--kv-sparsity must be a number in \[0, 1\)/],
      [['--kv-sparsity', '0.5', '--dense'], /--dense .* does not go with --kv-sparsity/],
    ] as const) {
      const r = await cli(['generate', runDir, '--prompt', PROMPT, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
    }
    const r = await cli(['--kv-sparsity', '0.5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--kv-sparsity goes with 'sparse-train generate/);
  });
});
