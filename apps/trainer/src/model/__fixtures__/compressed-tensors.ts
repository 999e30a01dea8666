// Golden compressed-tensors checkpoints, built by hand from the library's published code (version
// 0.12.2) without any of our writer's code, for the tiny model below:
//
//   Sparse24BitMaskCompressor.compress_weight / sparse24_bitmask_compress / get_24_bytemasks,
//   BitmaskCompressor.compress_weight / bitmask_compress, pack_bitmasks (numpy.packbits, axis=-1,
//   bitorder="little"), ModelCompressor.update_config (json.dump indent=2 sort_keys=True), and the
//   safetensors writer (u64 LE header length; JSON header, "__metadata__" first, then tensors sorted
//   by dtype in descending enum order (I64 > BF16 > F16 > U8) and then by name; spaces to an 8-byte
//   boundary; raw little-endian data).
//
// Every value is exactly representable in fp16 and bf16; their bit patterns are written out below.
// The bytes in ./compressed-tensors/ are this script's output (the test checks that, and rewrites
// them when run with UPDATE_FIXTURES=1).

/** The dense model, in parameter order; `target` marks the pruned weights. */
export const FIXTURE_PARAMS: { name: string; shape: number[]; values: number[]; target: boolean }[] = [
  // row 0: groups (0.5, 0, -1.25, 0) and (0, 0, 2, 0); row 1: (0, 0, 0, 0) and (3.75, -0.5, 0, 0)
  { name: 'layers.0.mlp.up.weight', shape: [2, 8], values: [0.5, 0, -1.25, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3.75, -0.5, 0, 0], target: true },
  { name: 'layers.0.norm.weight', shape: [4], values: [1, 1, 0.5, -2], target: false },
  { name: 'layers.0.mlp.down.weight', shape: [3, 4], values: [0, 1.5, 0, -3, 0.25, 0, 0, 0, 0, 0, 0, 0], target: true },
];

// fp16 and bf16 bit patterns of the values used
const F16: Record<string, number> = { '0': 0x0000, '0.5': 0x3800, '-1.25': 0xbd00, '2': 0x4000, '3.75': 0x4380, '-0.5': 0xb800, '1': 0x3c00, '-2': 0xc000, '1.5': 0x3e00, '-3': 0xc200, '0.25': 0x3400 };
const BF16: Record<string, number> = { '0': 0x0000, '0.5': 0x3f00, '-1.25': 0xbfa0, '2': 0x4000, '3.75': 0x4070, '-0.5': 0xbf00, '1': 0x3f80, '-2': 0xc000, '1.5': 0x3fc0, '-3': 0xc040, '0.25': 0x3e80 };

type Part = { name: string; dtype: 'I64' | 'F16' | 'BF16' | 'U8'; shape: number[]; bytes: Uint8Array };

const i64 = (xs: number[]) => {
  const b = new Uint8Array(xs.length * 8);
  xs.forEach((x, i) => new DataView(b.buffer).setBigInt64(i * 8, BigInt(x), true));
  return b;
};
const half = (table: Record<string, number>, xs: number[]) => {
  const b = new Uint8Array(xs.length * 2);
  xs.forEach((x, i) => new DataView(b.buffer).setUint16(i * 2, table[String(x)]!, true));
  return b;
};

function safetensors(parts: Part[], metadata: string): Uint8Array {
  let offset = 0;
  const fields = [`"__metadata__":${metadata}`];
  for (const p of parts) {
    fields.push(`"${p.name}":{"dtype":"${p.dtype}","shape":[${p.shape.join(',')}],"data_offsets":[${offset},${offset + p.bytes.length}]}`);
    offset += p.bytes.length;
  }
  let json = `{${fields.join(',')}}`;
  while (json.length % 8 !== 0) json += ' ';
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p.bytes, at);
    at += p.bytes.length;
  }
  return out;
}

// 32 elements, 20 of them zero: global_sparsity 0.625
const config = (format: string, structure: string) => `{
  "quantization_config": {
    "quant_method": "compressed-tensors",
    "sparsity_config": {
      "format": "${format}",
      "global_sparsity": 0.625,
      "ignore": [],
      "sparsity_structure": "${structure}",
      "targets": [
        "layers.0.mlp.up",
        "layers.0.mlp.down"
      ]
    },
    "transform_config": {},
    "version": "0.12.2"
  }
}`;

/**
 * sparse-24-bitmask in fp16. get_24_bytemasks keeps the top 2 of each group of 4 by magnitude; where a
 * group has fewer than 2 non-zeros the kept zeros are the lowest-index ones.
 *   up   row 0: keep 0, 2 | 4, 6 -> bits 0b01010101 = 0x55, values 0.5 -1.25 0 2
 *        row 1: keep 0, 1 | 4, 5 -> 0b00110011 = 0x33, values 0 0 3.75 -0.5
 *   down row 0: keep 1, 3 -> 0x0a (1.5 -3); row 1: keep 0, 1 -> 0x03 (0.25 0); row 2: 0, 1 -> 0x03 (0 0)
 * shape is torch.tensor(shape).reshape(-1, 1): I64 [2, 1].
 */
export function sparse24Fp16(): { safetensors: Uint8Array; config: string } {
  const parts: Part[] = [
    { name: 'layers.0.mlp.down.shape', dtype: 'I64', shape: [2, 1], bytes: i64([3, 4]) },
    { name: 'layers.0.mlp.up.shape', dtype: 'I64', shape: [2, 1], bytes: i64([2, 8]) },
    { name: 'layers.0.mlp.down.compressed', dtype: 'F16', shape: [3, 2], bytes: half(F16, [1.5, -3, 0.25, 0, 0, 0]) },
    { name: 'layers.0.mlp.up.compressed', dtype: 'F16', shape: [2, 4], bytes: half(F16, [0.5, -1.25, 0, 2, 0, 0, 3.75, -0.5]) },
    { name: 'layers.0.norm.weight', dtype: 'F16', shape: [4], bytes: half(F16, [1, 1, 0.5, -2]) },
    { name: 'layers.0.mlp.down.bitmask', dtype: 'U8', shape: [3, 1], bytes: new Uint8Array([0x0a, 0x03, 0x03]) },
    { name: 'layers.0.mlp.up.bitmask', dtype: 'U8', shape: [2, 1], bytes: new Uint8Array([0x55, 0x33]) },
  ];
  return { safetensors: safetensors(parts, '{"format":"pt"}'), config: config('sparse-24-bitmask', '2:4') };
}

/**
 * sparse-bitmask in bf16: bytemask tensor != 0, values in row-major order, row_offsets
 * cumsum(row_counts) - row_counts, shape torch.tensor(shape): I64 [2].
 *   up   row 0: cols 0, 2, 6 -> 0b01000101 = 0x45; row 1: cols 4, 5 -> 0b00110000 = 0x30; offsets 0, 3
 *   down row 0: cols 1, 3 -> 0x0a; row 1: col 0 -> 0x01; row 2: none -> 0x00; offsets 0, 2, 3
 */
export function sparseBitmaskBf16(): { safetensors: Uint8Array; config: string } {
  const parts: Part[] = [
    { name: 'layers.0.mlp.down.row_offsets', dtype: 'I64', shape: [3], bytes: i64([0, 2, 3]) },
    { name: 'layers.0.mlp.down.shape', dtype: 'I64', shape: [2], bytes: i64([3, 4]) },
    { name: 'layers.0.mlp.up.row_offsets', dtype: 'I64', shape: [2], bytes: i64([0, 3]) },
    { name: 'layers.0.mlp.up.shape', dtype: 'I64', shape: [2], bytes: i64([2, 8]) },
    { name: 'layers.0.mlp.down.compressed', dtype: 'BF16', shape: [3], bytes: half(BF16, [1.5, -3, 0.25]) },
    { name: 'layers.0.mlp.up.compressed', dtype: 'BF16', shape: [5], bytes: half(BF16, [0.5, -1.25, 2, 3.75, -0.5]) },
    { name: 'layers.0.norm.weight', dtype: 'BF16', shape: [4], bytes: half(BF16, [1, 1, 0.5, -2]) },
    { name: 'layers.0.mlp.down.bitmask', dtype: 'U8', shape: [3, 1], bytes: new Uint8Array([0x0a, 0x01, 0x00]) },
    { name: 'layers.0.mlp.up.bitmask', dtype: 'U8', shape: [2, 1], bytes: new Uint8Array([0x45, 0x30]) },
  ];
  return { safetensors: safetensors(parts, '{"format":"pt"}'), config: config('sparse-bitmask', 'unstructured') };
}
