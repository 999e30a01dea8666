// Attention masks at two granularities. An element mask answers "may query i attend to key j" for one
// head; a BlockMask is what block-sparse kernels consume: the [seq, seq] score matrix cut into square
// tiles of blockSize, each tile either skipped (0), computed in full (1) or computed with the element mask
// consulted (2). The layout (tile codes, LSB-first element bits) is shared with the native kernels.

import { ArgumentError, ShapeError } from '@sparse/tensor';

/** Tile codes of a BlockMask. */
export const TILE_SKIP = 0;
export const TILE_FULL = 1;
export const TILE_PARTIAL = 2;
export type TileState = 0 | 1 | 2;

/** The block-level mask the kernels read. */
export interface BlockMask {
  /** Sequence length (queries and keys). */
  seq: number;
  /** Tile side in tokens; the last tile row/column is shorter when blockSize does not divide seq. */
  blockSize: number;
  /** Heads the tiles are given for; 1 = one mask shared by every head. */
  heads: number;
  /** Tiles per side: ceil(seq / blockSize). */
  nb: number;
  /** [heads, nb, nb]: 0 = skip, 1 = every element of the tile allowed, 2 = partial (consult elementBits). */
  tiles: Uint8Array;
  /**
   * Present when any tile is 2: [heads or 1, seq, seq] bits, LSB first (bit j of row i of head h is bit
   * (p & 7) of byte p >> 3 with p = (h * seq + i) * seq + j), 1 = allowed. Only read inside tiles coded 2;
   * elsewhere the tile code decides (the builders here set the bits of full tiles too, but a mask whose
   * tiles were restricted afterwards keeps the old bits in its skipped tiles).
   */
  elementBits?: Uint8Array;
}

/** An element mask as a function: may query i attend to key j in head h. */
export type ElementMaskFn = (h: number, i: number, j: number) => boolean;

function checkInt(where: string, name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ArgumentError(`${where}: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** Tiles per side for a sequence length and block size. */
export function blockCount(seq: number, blockSize: number): number {
  checkInt('blockCount', 'seq', seq, 1);
  checkInt('blockCount', 'blockSize', blockSize, 1);
  return Math.ceil(seq / blockSize);
}

/** Checks a BlockMask's sizes and codes; throws ShapeError / ArgumentError naming the field. */
export function validateBlockMask(mask: BlockMask, where = 'BlockMask'): void {
  if (mask === null || typeof mask !== 'object') throw new ArgumentError(`${where}: expected a BlockMask`);
  checkInt(where, 'seq', mask.seq, 1);
  checkInt(where, 'blockSize', mask.blockSize, 1);
  checkInt(where, 'heads', mask.heads, 1);
  const nb = Math.ceil(mask.seq / mask.blockSize);
  if (mask.nb !== nb) throw new ShapeError(`${where}: nb must be ceil(seq / blockSize) = ${nb}, got ${mask.nb}`);
  if (!(mask.tiles instanceof Uint8Array) || mask.tiles.length !== mask.heads * nb * nb) {
    throw new ShapeError(`${where}: tiles must be a Uint8Array of heads * nb * nb = ${mask.heads * nb * nb}, got ${mask.tiles?.length}`);
  }
  let partial = false;
  for (let t = 0; t < mask.tiles.length; t++) {
    const v = mask.tiles[t]!;
    if (v > 2) throw new ArgumentError(`${where}: tiles[${t}] = ${v}; tile codes are 0, 1 and 2`);
    if (v === 2) partial = true;
  }
  if (mask.elementBits !== undefined) {
    const perHead = Math.ceil((mask.seq * mask.seq) / 8);
    const ok = mask.elementBits instanceof Uint8Array && (mask.elementBits.length === perHead || mask.elementBits.length === Math.ceil((mask.heads * mask.seq * mask.seq) / 8));
    if (!ok) throw new ShapeError(`${where}: elementBits must hold [heads or 1, seq, seq] bits (${perHead} bytes per head), got ${mask.elementBits?.length} bytes`);
  } else if (partial) {
    throw new ArgumentError(`${where}: elementBits is required when a tile is 2 (partial)`);
  }
}

/** Heads the elementBits of a mask hold (1 or mask.heads). */
export function elementBitHeads(mask: BlockMask): number {
  if (mask.elementBits === undefined) return 0;
  return mask.elementBits.length === Math.ceil((mask.heads * mask.seq * mask.seq) / 8) && mask.heads > 1 ? mask.heads : 1;
}

/** The tile code of query block qb, key block kb in head h (a shared mask answers for every head). */
export function tileState(mask: BlockMask, h: number, qb: number, kb: number): TileState {
  const hh = mask.heads === 1 ? 0 : h;
  return mask.tiles[(hh * mask.nb + qb) * mask.nb + kb]! as TileState;
}

/** May query i attend to key j in head h under this mask. */
export function elementAllowed(mask: BlockMask, h: number, i: number, j: number): boolean {
  const { seq, blockSize } = mask;
  if (i < 0 || i >= seq || j < 0 || j >= seq) throw new ArgumentError(`elementAllowed: (i, j) = (${i}, ${j}) outside [0, ${seq})`);
  if (h < 0 || (mask.heads > 1 && h >= mask.heads)) throw new ArgumentError(`elementAllowed: head ${h} outside [0, ${mask.heads})`);
  const t = tileState(mask, h, Math.floor(i / blockSize), Math.floor(j / blockSize));
  if (t !== TILE_PARTIAL) return t === TILE_FULL;
  const hb = elementBitHeads(mask) === 1 ? 0 : h;
  const p = (hb * seq + i) * seq + j;
  return ((mask.elementBits![p >> 3]! >> (p & 7)) & 1) === 1;
}

/** The element mask as bytes [heads, seq, seq] (1 = allowed); a shared mask (heads 1) gives [1, seq, seq]. */
export function toDense(mask: BlockMask): Uint8Array {
  validateBlockMask(mask, 'toDense');
  const { seq, heads } = mask;
  const out = new Uint8Array(heads * seq * seq);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < seq; i++) {
      const row = (h * seq + i) * seq;
      for (let j = 0; j < seq; j++) out[row + j] = elementAllowed(mask, h, i, j) ? 1 : 0;
    }
  }
  return out;
}

export interface MaskDensity {
  /** Fraction of tiles computed (code 1 or 2), over heads * nb * nb. */
  tiles: number;
  /** Fraction of (head, query, key) elements allowed, over heads * seq * seq. */
  elements: number;
  /** Tiles computed (code 1 or 2), all heads together. */
  computedTiles: number;
  /** Elements allowed, all heads together. */
  allowedElements: number;
}

/** How much of the score matrix a mask computes (tiles) and allows (elements). */
export function maskDensity(mask: BlockMask): MaskDensity {
  validateBlockMask(mask, 'maskDensity');
  const { seq, blockSize, heads, nb } = mask;
  let computedTiles = 0;
  let allowedElements = 0;
  for (let h = 0; h < heads; h++) {
    for (let qb = 0; qb < nb; qb++) {
      const rows = Math.min(seq, (qb + 1) * blockSize) - qb * blockSize;
      for (let kb = 0; kb < nb; kb++) {
        const t = mask.tiles[(h * nb + qb) * nb + kb]!;
        if (t === TILE_SKIP) continue;
        computedTiles++;
        const cols = Math.min(seq, (kb + 1) * blockSize) - kb * blockSize;
        if (t === TILE_FULL) {
          allowedElements += rows * cols;
          continue;
        }
        for (let i = qb * blockSize; i < qb * blockSize + rows; i++) {
          for (let j = kb * blockSize; j < kb * blockSize + cols; j++) if (elementAllowed(mask, h, i, j)) allowedElements++;
        }
      }
    }
  }
  return { tiles: computedTiles / (heads * nb * nb), elements: allowedElements / (heads * seq * seq), computedTiles, allowedElements };
}

/** Sets bits [j0, j1) of row i of head h in an LSB-first [*, seq, seq] bit array. */
export function setBitRange(bits: Uint8Array, seq: number, h: number, i: number, j0: number, j1: number): void {
  let p = (h * seq + i) * seq + j0;
  const end = (h * seq + i) * seq + j1;
  while (p < end && (p & 7) !== 0) {
    bits[p >> 3]! |= 1 << (p & 7);
    p++;
  }
  while (p + 8 <= end) {
    bits[p >> 3] = 0xff;
    p += 8;
  }
  while (p < end) {
    bits[p >> 3]! |= 1 << (p & 7);
    p++;
  }
}

/**
 * A BlockMask from any element mask, by classifying each tile element by element (seq² calls to `allowed`
 * per head): the reference every faster builder is tested against. `heads` > 1 gives per-head tiles.
 */
export function blockMaskFromElements(allowed: ElementMaskFn, opts: { seq: number; blockSize: number; heads?: number }): BlockMask {
  const seq = checkInt('blockMaskFromElements', 'seq', opts.seq, 1);
  const blockSize = checkInt('blockMaskFromElements', 'blockSize', opts.blockSize, 1);
  const heads = checkInt('blockMaskFromElements', 'heads', opts.heads ?? 1, 1);
  const nb = Math.ceil(seq / blockSize);
  const tiles = new Uint8Array(heads * nb * nb);
  const bits = new Uint8Array(Math.ceil((heads * seq * seq) / 8));
  let partial = false;
  for (let h = 0; h < heads; h++) {
    for (let qb = 0; qb < nb; qb++) {
      for (let kb = 0; kb < nb; kb++) {
        let any = false;
        let all = true;
        for (let i = qb * blockSize; i < Math.min(seq, (qb + 1) * blockSize); i++) {
          for (let j = kb * blockSize; j < Math.min(seq, (kb + 1) * blockSize); j++) {
            if (allowed(h, i, j)) {
              any = true;
              const p = (h * seq + i) * seq + j;
              bits[p >> 3]! |= 1 << (p & 7);
            } else all = false;
          }
        }
        const t = all ? TILE_FULL : any ? TILE_PARTIAL : TILE_SKIP;
        if (t === TILE_PARTIAL) partial = true;
        tiles[(h * nb + qb) * nb + kb] = t;
      }
    }
  }
  return partial ? { seq, blockSize, heads, nb, tiles, elementBits: bits } : { seq, blockSize, heads, nb, tiles };
}

/**
 * Keeps only the tiles selected by `keep` ([keepHeads, nb, nb], non-zero = keep) of a mask: a kept tile has
 * its code in `mask`, a dropped one is 0. A shared mask (heads 1) is broadcast to keep's heads. The result
 * has keepHeads heads (or mask.heads when that is larger and keep is shared).
 */
export function restrictTiles(mask: BlockMask, keep: Uint8Array, keepHeads: number): BlockMask {
  validateBlockMask(mask, 'restrictTiles');
  const { seq, blockSize, nb } = mask;
  checkInt('restrictTiles', 'keepHeads', keepHeads, 1);
  if (keep.length !== keepHeads * nb * nb) throw new ShapeError(`restrictTiles: keep must be [${keepHeads}, ${nb}, ${nb}], got ${keep.length} entries`);
  if (mask.heads !== 1 && keepHeads !== 1 && mask.heads !== keepHeads) throw new ShapeError(`restrictTiles: mask has ${mask.heads} heads, keep ${keepHeads}`);
  const heads = Math.max(mask.heads, keepHeads);
  const tiles = new Uint8Array(heads * nb * nb);
  let partial = false;
  for (let h = 0; h < heads; h++) {
    const mh = mask.heads === 1 ? 0 : h;
    const kh = keepHeads === 1 ? 0 : h;
    for (let t = 0; t < nb * nb; t++) {
      const v = keep[kh * nb * nb + t] !== 0 ? mask.tiles[mh * nb * nb + t]! : 0;
      tiles[h * nb * nb + t] = v;
      if (v === TILE_PARTIAL) partial = true;
    }
  }
  if (!partial) return { seq, blockSize, heads, nb, tiles };
  return { seq, blockSize, heads, nb, tiles, elementBits: mask.elementBits };
}
