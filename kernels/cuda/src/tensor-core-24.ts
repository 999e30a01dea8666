// The 2:4 layout the sparse tensor cores read (`mma.sp` m16n8k32, fp16/bf16), and its conversion to
// and from @sparse/tensor's N:M layout (n = 2, m = 4). The GPU compressor (native/compress24.cu)
// writes exactly this layout, so the GPU tests check it against compressDense24 below.
//
// How the metadata is laid out, in our words (PTX ISA, "sparse matrix storage" and the fragment
// layouts of sparse mma.m16n8k32 for .f16/.bf16):
//
// - The A operand of one mma.sp.m16n8k32 is a 16 x 32 tile of the logical matrix. Each row is cut
//   into 8 chunks of 4 consecutive columns; a chunk keeps 2 values, stored in order of position, so a
//   row of the tile becomes 16 compressed values. The compressed values are plain row-major
//   [rows, paddedCols / 2]: the same order as NMLayout's values.
// - Each kept value has a 2-bit position inside its chunk. A chunk's 4 bits hold the position of its
//   first kept value in bits 1..0 and that of the second in bits 3..2; the positions are distinct
//   (0b0000, 0b0101, 0b1010, 0b1111 are invalid) and, as stored here, increasing. Chunks follow each
//   other from the least significant nibble up.
// - For .f16/.bf16 at m16n8k32 one thread pair of every group of four lanes supplies the metadata;
//   the sparsity selector names the pair (0: lanes 4g and 4g+1, the only selector our kernel uses).
//   Lane 4g+t (t = 0, 1) supplies one 32-bit word: bits 15..0 are the nibbles of chunks 4t..4t+3 of
//   tile row g and bits 31..16 those of the same chunks of tile row g+8. So lane 4g covers columns
//   0..15 and lane 4g+1 columns 16..31 of rows g and g+8 (the rows its A fragment also holds).
// - We store those words so that each lane loads its own with one 32-bit read: for row tile
//   mt = row / 16 and column tile kt = col / 32, the 16 words of the tile are contiguous, word
//   g * 2 + t at meta[(mt * (paddedCols / 32) + kt) * 16 + g * 2 + t].
// - Columns are padded to a multiple of 32 and rows to a multiple of 16 (in the metadata only; the
//   values keep `rows` rows): padding chunks keep positions 0 and 1 (nibble 0b0100) with zero values,
//   which is valid metadata and adds nothing to the product.
import { ArgumentError, LayoutError, ShapeError, type NMLayout } from '@sparse/tensor';

/** A 2:4 sparse matrix in the tensor-core layout described above. */
export interface TensorCore24<V extends Float32Array | Uint16Array = Float32Array | Uint16Array> {
  format: 'tc24';
  /** Logical [rows, cols]. */
  shape: [number, number];
  /** cols rounded up to a multiple of 32. */
  paddedCols: number;
  /** Compressed values [rows, paddedCols / 2], row-major; float32, or fp16/bf16 bits. */
  values: V;
  /** ceil(rows / 16) * (paddedCols / 32) * 16 words. */
  meta: Uint32Array;
}

/** The nibble of a chunk whose kept positions are a < b. */
export function chunkNibble(a: number, b: number): number {
  return (a & 3) | ((b & 3) << 2);
}

/** Nibble of a padding chunk (positions 0 and 1). */
export const PAD_NIBBLE = 0b0100;

/** Index into `meta` of the word lane 4g + t loads for row tile mt and column tile kt. */
export function metaWordIndex(paddedCols: number, mt: number, kt: number, g: number, t: number): number {
  return (mt * (paddedCols / 32) + kt) * 16 + g * 2 + t;
}

/** Where the nibble of (row, chunk) lives: word index in `meta` and bit shift. */
export function metaNibbleLocation(paddedCols: number, row: number, chunk: number): { word: number; shift: number } {
  const mt = Math.floor(row / 16);
  const r = row % 16;
  const kt = Math.floor(chunk / 8);
  const c = chunk % 8;
  const g = r % 8;
  const t = c >> 2;
  const shift = (r >= 8 ? 16 : 0) + (c & 3) * 4;
  return { word: metaWordIndex(paddedCols, mt, kt, g, t), shift };
}

export function paddedColsFor(cols: number): number {
  return Math.ceil(cols / 32) * 32;
}

function metaLength(rows: number, paddedCols: number): number {
  return Math.ceil(rows / 16) * (paddedCols / 32) * 16;
}

/** Metadata with every chunk set to the padding nibble (the state every conversion starts from). */
function paddingMeta(rows: number, paddedCols: number): Uint32Array {
  // 0x4444_4444: eight padding nibbles.
  return new Uint32Array(metaLength(rows, paddedCols)).fill(0x44444444);
}

function setNibble(meta: Uint32Array, paddedCols: number, row: number, chunk: number, nibble: number): void {
  const { word, shift } = metaNibbleLocation(paddedCols, row, chunk);
  meta[word] = ((meta[word]! & ~(0xf << shift)) | (nibble << shift)) >>> 0;
}

/** The nibble of (row, chunk). */
export function getNibble(tc: Pick<TensorCore24, 'meta' | 'paddedCols'>, row: number, chunk: number): number {
  const { word, shift } = metaNibbleLocation(tc.paddedCols, row, chunk);
  return (tc.meta[word]! >>> shift) & 0xf;
}

function read2(bytes: Uint8Array, k: number): number {
  return (bytes[k >> 2]! >>> ((k & 3) * 2)) & 3;
}

function checkDims(rows: number, cols: number, where: string): void {
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) {
    throw new ShapeError(`${where}: shape must be two non-negative integers, got [${rows}, ${cols}]`);
  }
}

/**
 * The tensor-core layout of an N:M layout with n = 2, m = 4 (float32, float16 or bfloat16 values).
 * The compressed values are the NM layout's, each row padded with zeros to paddedCols / 2.
 */
export function nmToTensorCore24(layout: NMLayout): TensorCore24 {
  const where = 'nmToTensorCore24';
  if (layout.format !== 'nm') throw new LayoutError(`${where}: layout.format must be 'nm', got ${String(layout.format)}`);
  if (layout.n !== 2 || layout.m !== 4) throw new ArgumentError(`${where}: only 2:4 layouts map to the sparse tensor cores, got n = ${layout.n}, m = ${layout.m}`);
  if (layout.indexBits !== 2) throw new LayoutError(`${where}: layout.indexBits must be 2 for m = 4, got ${layout.indexBits}`);
  const [rows, cols] = layout.shape;
  checkDims(rows, cols, where);
  if (cols % 4 !== 0) throw new ShapeError(`${where}: layout.shape[1] = ${cols} is not a multiple of 4`);
  const src = layout.values as Float32Array | Uint16Array;
  if (!(src instanceof Float32Array || src instanceof Uint16Array)) {
    throw new ArgumentError(`${where}: layout.dtype must be float32, float16 or bfloat16, got ${layout.dtype}`);
  }
  const half = cols / 2;
  if (src.length !== rows * half) throw new LayoutError(`${where}: layout.values has ${src.length} entries, expected ${rows * half}`);
  if (layout.indices.length < Math.ceil((rows * half * 2) / 8)) throw new LayoutError(`${where}: layout.indices has ${layout.indices.length} bytes, expected ${Math.ceil((rows * half * 2) / 8)}`);
  const paddedCols = paddedColsFor(cols);
  const stride = paddedCols / 2;
  const values = src instanceof Float32Array ? new Float32Array(rows * stride) : new Uint16Array(rows * stride);
  const meta = paddingMeta(rows, paddedCols);
  for (let r = 0; r < rows; r++) {
    values.set(src.subarray(r * half, (r + 1) * half), r * stride);
    for (let c = 0; c < cols / 4; c++) {
      const k = r * half + c * 2;
      const a = read2(layout.indices, k);
      const b = read2(layout.indices, k + 1);
      if (a >= b) {
        throw new LayoutError(`${where}: row ${r}, group at column ${c * 4} stores positions ${a}, ${b}; the tensor cores need two distinct positions in increasing order`);
      }
      setNibble(meta, paddedCols, r, c, chunkNibble(a, b));
    }
  }
  return { format: 'tc24', shape: [rows, cols], paddedCols, values, meta };
}

/** Throws LayoutError naming the field unless `tc` is a consistent tensor-core 2:4 layout. */
export function validateTensorCore24(tc: TensorCore24, where = 'validateTensorCore24'): void {
  if (tc === null || typeof tc !== 'object' || tc.format !== 'tc24') throw new LayoutError(`${where}: format must be 'tc24'`);
  const [rows, cols] = tc.shape ?? [];
  checkDims(rows as number, cols as number, where);
  if (tc.paddedCols !== paddedColsFor(cols!)) throw new LayoutError(`${where}: paddedCols must be ${paddedColsFor(cols!)} for ${cols} columns, got ${tc.paddedCols}`);
  if (!(tc.values instanceof Float32Array || tc.values instanceof Uint16Array)) throw new LayoutError(`${where}: values must be a Float32Array or a Uint16Array`);
  if (tc.values.length !== rows! * (tc.paddedCols / 2)) throw new LayoutError(`${where}: values has ${tc.values.length} entries, expected rows * paddedCols / 2 = ${rows! * (tc.paddedCols / 2)}`);
  if (!(tc.meta instanceof Uint32Array)) throw new LayoutError(`${where}: meta must be a Uint32Array`);
  const len = metaLength(rows!, tc.paddedCols);
  if (tc.meta.length !== len) throw new LayoutError(`${where}: meta has ${tc.meta.length} words, expected ${len}`);
  const rowsPadded = Math.ceil(rows! / 16) * 16;
  for (let r = 0; r < rowsPadded; r++) {
    for (let c = 0; c < tc.paddedCols / 4; c++) {
      const nib = getNibble(tc, r, c);
      if ((nib & 3) >= nib >> 2) {
        throw new LayoutError(`${where}: meta nibble of row ${r}, chunk ${c} is 0b${nib.toString(2).padStart(4, '0')}: positions must be distinct and increasing`);
      }
    }
  }
}

/** The N:M layout (n = 2, m = 4) of a tensor-core layout; cols must be a multiple of 4. */
export function tensorCore24ToNM(tc: TensorCore24): NMLayout {
  const where = 'tensorCore24ToNM';
  validateTensorCore24(tc, where);
  const [rows, cols] = tc.shape;
  if (cols % 4 !== 0) throw new ShapeError(`${where}: shape[1] = ${cols} is not a multiple of 4, which the N:M layout needs`);
  const half = cols / 2;
  const stride = tc.paddedCols / 2;
  const float = tc.values instanceof Float32Array;
  const values = float ? new Float32Array(rows * half) : new Uint16Array(rows * half);
  const indices = new Uint8Array(Math.ceil((rows * half * 2) / 8));
  for (let r = 0; r < rows; r++) {
    values.set(tc.values.subarray(r * stride, r * stride + half), r * half);
    for (let c = 0; c < cols / 4; c++) {
      const nib = getNibble(tc, r, c);
      const k = r * half + c * 2;
      indices[k >> 2]! |= (nib & 3) << ((k & 3) * 2);
      indices[(k + 1) >> 2]! |= (nib >> 2) << (((k + 1) & 3) * 2);
    }
  }
  return {
    format: 'nm',
    shape: [rows, cols],
    n: 2,
    m: 4,
    // A Uint16Array could be float16 or bfloat16; the caller relabels it (the bits are unchanged).
    dtype: float ? 'float32' : 'float16',
    indexBits: 2,
    values,
    indices,
  } as NMLayout;
}

/**
 * Compresses a dense row-major float32 [rows, cols] matrix that is 2:4 sparse (at most two non-zeros
 * in every group of four columns; cols need not be a multiple of 4 or 32: missing columns count as
 * zeros). A group with fewer than two non-zeros keeps its lowest zero positions. This is the CPU
 * counterpart of the GPU compressor. Throws ArgumentError naming the first group with three or more
 * non-zeros.
 */
export function compressDense24(dense: Float32Array, rows: number, cols: number): TensorCore24<Float32Array> {
  const where = 'compressDense24';
  checkDims(rows, cols, where);
  if (!(dense instanceof Float32Array)) throw new ArgumentError(`${where}: dense must be a Float32Array`);
  if (dense.length !== rows * cols) throw new ShapeError(`${where}: dense has ${dense.length} entries, expected rows * cols = ${rows * cols}`);
  const paddedCols = paddedColsFor(cols);
  const stride = paddedCols / 2;
  const values = new Float32Array(rows * stride);
  const meta = paddingMeta(rows, paddedCols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < paddedCols / 4; c++) {
      const keep: number[] = [];
      for (let p = 0; p < 4; p++) {
        const j = c * 4 + p;
        const x = j < cols ? dense[r * cols + j]! : 0;
        if (x !== 0 || Number.isNaN(x)) keep.push(p);
      }
      if (keep.length > 2) throw new ArgumentError(`${where}: row ${r}, columns ${c * 4}..${c * 4 + 3} hold ${keep.length} non-zeros; a 2:4 matrix has at most 2 per group of 4`);
      for (let p = 0; keep.length < 2; p++) if (!keep.includes(p)) keep.push(p);
      keep.sort((a, b) => a - b);
      const [a, b] = keep as [number, number];
      values[r * stride + c * 2] = c * 4 + a < cols ? dense[r * cols + c * 4 + a]! : 0;
      values[r * stride + c * 2 + 1] = c * 4 + b < cols ? dense[r * cols + c * 4 + b]! : 0;
      setNibble(meta, paddedCols, r, c, chunkNibble(a, b));
    }
  }
  return { format: 'tc24', shape: [rows, cols], paddedCols, values, meta };
}

/** The dense row-major float32 [rows, cols] matrix of a float32 tensor-core layout. */
export function decompressTensorCore24(tc: TensorCore24<Float32Array>): Float32Array {
  validateTensorCore24(tc, 'decompressTensorCore24');
  const [rows, cols] = tc.shape;
  const stride = tc.paddedCols / 2;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < tc.paddedCols / 4; c++) {
      const nib = getNibble(tc, r, c);
      const ja = c * 4 + (nib & 3);
      const jb = c * 4 + (nib >> 2);
      if (ja < cols) out[r * cols + ja] = tc.values[r * stride + c * 2]!;
      if (jb < cols) out[r * cols + jb] = tc.values[r * stride + c * 2 + 1]!;
    }
  }
  return out;
}
