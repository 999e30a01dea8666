// sparse-train's main program: parse flags, pick a backend, load data, build the model, measure
// held-out perplexity, train, measure again. Returns the process exit code.

import * as tf from '@tensorflow/tfjs-core';
import pkg from '../../package.json';
import { chooseBackend } from '../backend.js';
import { embeddedData, type TextData } from '../data/dataset.js';
import { DataFileError, loadTextFile } from '../data/files.js';
import { createGpt } from '../model/gpt.js';
import { evaluatePerplexity, type EvalResult } from '../train/evaluate.js';
import { trainLoop } from '../train/loop.js';
import { FlagError, parseArgs, usage, type CliOptions } from './args.js';
import { formatDuration, ProgressBar, type ProgressStream } from './progress.js';

export interface CliIO {
  stdout: ProgressStream;
  stderr: ProgressStream;
}

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

const fmt = (n: number) => n.toLocaleString('en-US');

export async function main(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (err instanceof FlagError) {
      io.stderr.write(`sparse-train: ${err.message}\nRun 'sparse-train --help' for usage.\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (opts.help) {
    io.stdout.write(usage());
    return 0;
  }
  if (opts.version) {
    io.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  try {
    await run(opts, io);
    return 0;
  } catch (err) {
    if (err instanceof DataFileError) {
      io.stderr.write(`sparse-train: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    io.stderr.write(`sparse-train: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

async function run(opts: CliOptions, io: CliIO): Promise<void> {
  const human = !opts.json && !opts.quiet;
  const say = (line: string) => {
    if (human) io.stdout.write(`${line}\n`);
  };
  const emit = (event: Record<string, unknown>) => {
    if (opts.json) io.stdout.write(`${JSON.stringify(event)}\n`);
  };

  const data: TextData = opts.data !== undefined ? loadTextFile(opts.data) : embeddedData();
  const backend = await chooseBackend();
  const model = createGpt(
    { vocab: data.tokenizer.vocabSize, d: opts.d, layers: opts.layers, heads: opts.heads, ctx: opts.ctx },
    { seed: opts.seed },
  );
  try {
    const cfg = model.config;
    say(`sparse-train ${pkg.version} | backend ${backend.name}: ${backend.reason}`);
    say(
      `data   ${data.source}: ${fmt(data.tokens.length)} tokens (${data.tokenizer.kind}-level, vocab ${cfg.vocab}); ` +
        `train ${fmt(data.train.length)}, held out ${fmt(data.heldOut.length)}`,
    );
    say(`model  GPT d=${cfg.d} layers=${cfg.layers} heads=${cfg.heads} ctx=${cfg.ctx} mlp=${cfg.mlpRatio}x, ${fmt(model.numParams())} parameters`);
    say(`train  ${opts.steps} steps x batch ${opts.batch} x ctx ${cfg.ctx}, Adam lr ${opts.lr} (warmup, cosine decay), seed ${opts.seed}`);
    emit({
      event: 'start',
      version: pkg.version,
      backend: { name: backend.name, reason: backend.reason },
      data: { source: data.source, tokenizer: data.tokenizer.kind, vocab: cfg.vocab, tokens: data.tokens.length, train: data.train.length, heldOut: data.heldOut.length },
      model: { ...cfg, params: model.numParams() },
      train: { steps: opts.steps, batch: opts.batch, lr: opts.lr, seed: opts.seed },
    });

    const evalOpts = { maxWindows: opts.evalWindows > 0 ? opts.evalWindows : undefined };
    const evaluate = (phase: 'before' | 'after'): EvalResult => {
      const t0 = performance.now();
      const r = evaluatePerplexity(model, data.heldOut, evalOpts);
      const ms = performance.now() - t0;
      say(`eval   held-out perplexity ${phase} training: ${r.perplexity.toFixed(3)} (${r.loss.toFixed(4)} nats/token, ${fmt(r.tokens)} tokens, ${formatDuration(ms)})`);
      emit({ event: 'eval', phase, perplexity: r.perplexity, loss: r.loss, tokens: r.tokens, windows: r.windows, ms });
      return r;
    };

    const before = evaluate('before');
    const bar = opts.quiet ? undefined : new ProgressBar(io.stderr);
    const startMem = tf.memory().numTensors;
    const result = await trainLoop(model, {
      data: data.train,
      steps: opts.steps,
      batch: opts.batch,
      lr: opts.lr,
      seed: opts.seed,
      onStep: (s) => {
        bar?.update(s);
        emit({ event: 'step', ...s });
      },
    });
    bar?.finish();
    if (tf.memory().numTensors !== startMem) {
      io.stderr.write(`sparse-train: warning: ${tf.memory().numTensors - startMem} tensors leaked during training\n`);
    }
    const tps = result.tokens / Math.max(1e-9, result.elapsedMs / 1000);
    if (opts.steps > 0) say(`train  ${opts.steps} steps in ${formatDuration(result.elapsedMs)} (${fmt(Math.round(tps))} tokens/s), final loss ${result.losses.at(-1)!.toFixed(4)}`);
    const after = evaluate('after');

    const summary = `held-out perplexity: ${before.perplexity.toFixed(3)} before -> ${after.perplexity.toFixed(3)} after ${opts.steps} steps`;
    if (opts.json) {
      emit({
        event: 'done',
        perplexityBefore: before.perplexity,
        perplexityAfter: after.perplexity,
        steps: opts.steps,
        trainMs: result.elapsedMs,
        tokensPerSec: tps,
      });
    } else {
      io.stdout.write(`${summary}\n`);
    }
  } finally {
    model.dispose();
  }
}
