// `pnpm bench attention`: native block-sparse attention against native dense attention, forward
// and forward+backward, sequence 1024 / 2048 / 4096, head dim 64, 8 heads, causal. The block masks
// are random and causal-respecting (per head: query block bi keeps its diagonal tile plus random key
// blocks bj < bi, round(density * (bi + 1)) tiles in all), so density is the kept share of the causal
// tiles. Every candidate of one (sequence, pass) is timed side by side in one run (interleaved rep
// by rep, tooling/bench/harness.mjs `compare`, medians). Writes bench-results/attention.json and
// prints each goal as measured / goal / reached.
//
// Baselines: the forward's is the native dense kernel (denseAttention, causal). The backward needs
// the forward's lse, which the dense kernel does not write, so the dense forward+backward is the
// block-sparse forward and the same backward kernel with an all-ones mask (every causal tile, the
// dense kernel's 64 x 64 tiling).
//
// Environment: SPARSE_BENCH_QUICK=1 runs fewer repetitions (a smoke test of the script);
// SPARSE_BENCH_SEQS=1024,2048 picks the sequence lengths.
import { compare, printTable, writeResults } from '../../../tooling/bench/harness.mjs';
import { getKernel, Random } from '@sparse/tensor';
import { nativeInfo, registerCPUKernels } from '@sparse/kernels-cpu';

const QUICK = process.env.SPARSE_BENCH_QUICK === '1';
const REPS = QUICK ? 3 : 5;
const SEQS = (process.env.SPARSE_BENCH_SEQS ?? '1024,2048,4096').split(',').map(Number);
const DENSITIES = [0.5, 0.25, 0.1];
const HEADS = 8;
const D = 64;
const BS = 64;
const started = Date.now();
const log = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${line}`);

const reg = registerCPUKernels();
if (!reg.native || !reg.kernels.includes('blockSparseAttentionBackward')) {
  const reason = reg.native ? 'this build of the addon has no attentionBackward' : reg.reason;
  console.log(`native attention kernels not available (${reason}); nothing to benchmark`);
  writeResults('attention', { skipped: reason });
  process.exit(0);
}
const native = (name) => getKernel(name, 'sparse-cpu');
const denseForward = native('denseAttention');
const sparseForward = native('blockSparseAttention');
const backward = native('blockSparseAttentionBackward');

/** n values uniform in [-1, 1), seeded (the project's Random). */
function randomArray(n, seed) {
  return new Random(seed).fillUniform(new Float32Array(n), -1, 1);
}

/** Per-head causal block masks keeping `density` of each query block's causal tiles (diagonal always). */
function causalMask(nb, density, seed) {
  const rng = new Random(seed);
  const next = () => rng.uniform();
  const mask = new Uint8Array(HEADS * nb * nb);
  for (let h = 0; h < HEADS; h++) {
    for (let bi = 0; bi < nb; bi++) {
      const keep = Math.max(1, Math.round(density * (bi + 1)));
      const earlier = [...Array(bi).keys()];
      for (let t = earlier.length - 1; t > 0; t--) {
        const u = Math.floor(next() * (t + 1));
        [earlier[t], earlier[u]] = [earlier[u], earlier[t]];
      }
      for (const bj of [bi, ...earlier.slice(0, keep - 1)]) mask[h * nb * nb + bi * nb + bj] = 1;
    }
  }
  return mask;
}

const ms = (s) => Number((s * 1e3).toFixed(2));
const targets = [];
function target(what, value, goal) {
  targets.push({ target: what, measured: `${value.toFixed(2)}x`, goal: `>= ${goal}x`, reached: value >= goal ? 'yes' : 'NO' });
}

const results = { native: nativeInfo(), heads: HEADS, headDim: D, blockSize: BS, causal: true, quick: QUICK, forward: [], forwardBackward: [], notes: [] };
results.notes.push(
  'forward baseline: the native dense kernel (denseAttention, causal)',
  'forward+backward baseline: the block-sparse forward (with lse) and the same backward kernel with an all-ones block mask (the dense backward)',
  'density: kept share of the causal tiles, per head (diagonal tiles always kept)',
);

for (const seq of SEQS) {
  const nb = Math.ceil(seq / BS);
  const size = HEADS * seq * D;
  const q = randomArray(size, seq + 1);
  const k = randomArray(size, seq + 2);
  const v = randomArray(size, seq + 3);
  const dOut = randomArray(size, seq + 4);
  const base = { heads: HEADS, seq, headDim: D, q, qOffset: 0, k, kOffset: 0, v, vOffset: 0, causal: true };
  const causalTiles = (nb * (nb + 1)) / 2;
  const allOnes = new Uint8Array(nb * nb).fill(1);
  const masks = Object.fromEntries(DENSITIES.map((density) => [density, causalMask(nb, density, Math.round(density * 1000) + seq)]));
  const kept = (mask) => {
    let n = 0;
    for (let h = 0; h < HEADS; h++) for (let bi = 0; bi < nb; bi++) for (let bj = 0; bj <= bi; bj++) n += mask[h * nb * nb + bi * nb + bj];
    return n / (HEADS * causalTiles);
  };
  const buffers = () => ({ out: new Float32Array(size), lse: new Float32Array(HEADS * seq), dq: new Float32Array(size), dk: new Float32Array(size), dv: new Float32Array(size) });

  // Forward: dense kernel vs block-sparse at each density.
  {
    const out = new Float32Array(size);
    const candidates = { dense: () => denseForward({ ...base, out, outOffset: 0 }) };
    for (const density of DENSITIES) {
      const o = new Float32Array(size);
      candidates[`sparse ${density}`] = () => sparseForward({ ...base, out: o, outOffset: 0, blockSize: BS, blockMask: masks[density] });
    }
    const r = await compare(candidates, { reps: REPS, warmup: 1 });
    for (const density of DENSITIES) {
      const t = r[`sparse ${density}`];
      const row = { seq, density, keptShare: Number(kept(masks[density]).toFixed(4)), sparseMs: ms(t.median), denseMs: ms(r.dense.median), speedup: r.dense.median / t.median };
      results.forward.push(row);
      log(`forward seq ${seq} density ${density} (kept ${row.keptShare}): ${row.sparseMs} ms vs dense ${row.denseMs} ms = ${row.speedup.toFixed(2)}x`);
    }
  }

  // Forward + backward: block-sparse forward (with lse) and backward, the dense one with all ones.
  {
    const step = (mask) => {
      const b = buffers();
      return () => {
        sparseForward({ ...base, out: b.out, outOffset: 0, blockSize: BS, blockMask: mask, lse: b.lse, lseOffset: 0 });
        backward({
          ...base, out: b.out, outOffset: 0, dOut, dOutOffset: 0, lse: b.lse, lseOffset: 0, blockSize: BS, blockMask: mask,
          dq: b.dq, dqOffset: 0, dk: b.dk, dkOffset: 0, dv: b.dv, dvOffset: 0,
        });
      };
    };
    const candidates = { dense: step(allOnes) };
    for (const density of DENSITIES) candidates[`sparse ${density}`] = step(masks[density]);
    const r = await compare(candidates, { reps: REPS, warmup: 1 });
    for (const density of DENSITIES) {
      const t = r[`sparse ${density}`];
      const row = { seq, density, keptShare: Number(kept(masks[density]).toFixed(4)), sparseMs: ms(t.median), denseMs: ms(r.dense.median), speedup: r.dense.median / t.median };
      results.forwardBackward.push(row);
      log(`forward+backward seq ${seq} density ${density} (kept ${row.keptShare}): ${row.sparseMs} ms vs dense ${row.denseMs} ms = ${row.speedup.toFixed(2)}x`);
    }
  }
}

// Decode over a bitmap KV cache: one query per head, 32 query heads on 8 kv heads, head dim 128,
// 4096 cached positions; kept shares 1 (every entry, the dense cache) / 0.5 / 0.25. No goal: the
// figure shows what reading fewer values buys when each row must still be expanded.
{
  const heads = 32, kvHeads = 8, d = 128, positions = 4096;
  const bitmap = native('attentionBitmapKV');
  const pack = (keep, seed) => {
    const rng = new Random(seed);
    const next = () => rng.uniform();
    const rows = positions * kvHeads, rowBytes = d / 8;
    const bits = new Uint8Array(rows * rowBytes);
    const start = new Int32Array(rows + 1);
    const values = new Float32Array(Math.ceil(rows * d * keep) + rows * 8);
    let n = 0;
    for (let r = 0; r < rows; r++) {
      start[r] = n;
      for (let c = 0; c < d; c++) {
        if (keep < 1 && next() >= keep) continue;
        if (n >= values.length) break;
        bits[r * rowBytes + (c >> 3)] |= 1 << (c & 7);
        values[n++] = next() * 2 - 1;
      }
    }
    start[rows] = n;
    return { bits, values: values.subarray(0, n), start };
  };
  const q = randomArray(heads * d, 77);
  const out = new Float32Array(heads * d);
  const caches = Object.fromEntries([1, 0.5, 0.25].map((keep) => [keep, { k: pack(keep, 1000 * keep + 1), v: pack(keep, 1000 * keep + 2) }]));
  const call = (c) => () =>
    bitmap({ heads, kvHeads, headDim: d, positions, q, qOffset: 0, kBits: c.k.bits, kValues: c.k.values, kStart: c.k.start, vBits: c.v.bits, vValues: c.v.values, vStart: c.v.start, out, outOffset: 0 });
  const r = await compare(Object.fromEntries(Object.entries(caches).map(([keep, c]) => [`keep ${keep}`, call(c)])), { reps: QUICK ? 5 : 21, warmup: 3 });
  results.bitmapKV = Object.entries(r).map(([name, t]) => ({ cache: name, heads, kvHeads, headDim: d, positions, ms: Number((t.median * 1e3).toFixed(3)), vsAllKept: r['keep 1'].median / t.median }));
  for (const row of results.bitmapKV) log(`attentionBitmapKV ${row.cache}: ${row.ms} ms (${row.vsAllKept.toFixed(2)}x the all-kept cache)`);
}

const at = (rows, seq, density) => rows.find((r) => r.seq === seq && r.density === density);
if (SEQS.includes(4096)) {
  target('block-sparse forward, density 0.1, seq 4096, vs dense forward', at(results.forward, 4096, 0.1).speedup, 7);
  target('block-sparse forward+backward, density 0.1, seq 4096, vs dense (all-ones mask) forward+backward', at(results.forwardBackward, 4096, 0.1).speedup, 5);
} else {
  results.notes.push('goals are set at seq 4096, which this run skipped');
}

console.log('');
printTable(results.forward.map((r) => ({ forward: `seq ${r.seq} density ${r.density}`, kept: r.keptShare, ms: r.sparseMs, 'dense ms': r.denseMs, 'x dense': r.speedup })));
console.log('');
printTable(results.forwardBackward.map((r) => ({ 'forward+backward': `seq ${r.seq} density ${r.density}`, kept: r.keptShare, ms: r.sparseMs, 'dense (all-ones) ms': r.denseMs, 'x dense': r.speedup })));
console.log('');
printTable(results.bitmapKV.map((r) => ({ 'attentionBitmapKV (32 q / 8 kv heads, d 128, 4096 positions)': r.cache, ms: r.ms, 'x all kept': r.vsAllKept })));
console.log('');
for (const n of results.notes) console.log(`note: ${n}`);
console.log('');
printTable(targets);
results.targets = targets;
results.seconds = (Date.now() - started) / 1000;
console.log(`\nwrote ${writeResults('attention', results)} in ${results.seconds.toFixed(0)} s`);
