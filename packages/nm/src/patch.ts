// PATCH (learnable tile-level hybrid sparsity): a weight is cut into tiles, and each tile is either dense
// or N:M (2:4) sparse, so the overall sparsity can sit anywhere between 0 and (1 - N/M). This file builds
// the mixed mask from per-tile decisions; the learnable gates live in @sparse/nm/tfjs (PatchGates).
import { type Mask } from '@sparse/masks';
import { ArgumentError, ShapeError, type Tensor } from '@sparse/tensor';
import { checkNM, readMatrix } from './internal.js';
import { nmMask } from './mask.js';

export interface PatchTiling {
  /** Tile size [rows, cols]; cols must be a multiple of m so N:M groups stay inside a tile. Default [4, 4]. */
  tile?: readonly [number, number];
  /** Pattern of the sparse tiles, 2:4 by default (groups along rows). */
  n?: number;
  m?: number;
}

export interface PatchGrid {
  tileRows: number;
  tileCols: number;
  /** Tiles down and across. */
  gridRows: number;
  gridCols: number;
  n: number;
  m: number;
}

/** Resolves and checks the tiling of a [rows, cols] weight. */
export function patchGrid(shape: readonly number[], opts: PatchTiling = {}, where = 'patchGrid'): PatchGrid {
  if (shape.length !== 2) throw new ShapeError(`${where}: expected a matrix, got shape [${shape.join(', ')}]`);
  const [rows, cols] = shape as [number, number];
  const [tileRows, tileCols] = opts.tile ?? [4, 4];
  const n = opts.n ?? 2;
  const m = opts.m ?? 4;
  checkNM(where, { n, m });
  if (!Number.isSafeInteger(tileRows) || !Number.isSafeInteger(tileCols) || tileRows < 1 || tileCols < 1) {
    throw new ArgumentError(`${where}: tile must be two positive integers, got [${String(tileRows)}, ${String(tileCols)}]`);
  }
  if (tileCols % m !== 0) throw new ArgumentError(`${where}: tile width ${tileCols} is not a multiple of m = ${m}`);
  if (rows % tileRows !== 0 || cols % tileCols !== 0) throw new ShapeError(`${where}: shape [${rows}, ${cols}] is not a whole number of [${tileRows}, ${tileCols}] tiles`);
  return { tileRows, tileCols, gridRows: rows / tileRows, gridCols: cols / tileCols, n, m };
}

function checkDecisions(where: string, decisions: ArrayLike<number | boolean>, grid: PatchGrid): void {
  const tiles = grid.gridRows * grid.gridCols;
  if (decisions?.length !== tiles) throw new ShapeError(`${where}: decisions has ${String(decisions?.length)} entries, the ${grid.gridRows}x${grid.gridCols} tile grid needs ${tiles}`);
}

/**
 * The PATCH mask of a weight: tile t (row-major over the tile grid) is N:M sparse when decisions[t] is
 * truthy, using the N:M mask of `scores` (|w| by default) inside the tile, and dense otherwise.
 */
export function patchMask(scores: Tensor, decisions: ArrayLike<number | boolean>, opts: PatchTiling = {}): Mask {
  const where = 'patchMask';
  const { rows, cols } = readMatrix(scores, where);
  const grid = patchGrid([rows, cols], opts, where);
  checkDecisions(where, decisions, grid);
  // Row-axis N:M groups never cross a tile edge (tile width is a multiple of m), so the matrix-wide N:M mask
  // restricted to a tile is that tile's own N:M mask.
  const nm = nmMask(scores, { n: grid.n, m: grid.m });
  const bits = new Uint32Array(Math.ceil((rows * cols) / 32));
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const t = Math.floor(i / grid.tileRows) * grid.gridCols + Math.floor(j / grid.tileCols);
      const flat = i * cols + j;
      const keep = decisions[t] ? (nm.bits[flat >>> 5]! >>> (flat & 31)) & 1 : 1;
      if (keep) bits[flat >>> 5]! |= 1 << (flat & 31);
    }
  }
  return { shape: [rows, cols], bits };
}

/** Sparsity of a PATCH mask: (#sparse tiles * (1 - n/m) * tile size) / numel. */
export function patchSparsity(shape: readonly number[], decisions: ArrayLike<number | boolean>, opts: PatchTiling = {}): number {
  const grid = patchGrid(shape, opts, 'patchSparsity');
  checkDecisions('patchSparsity', decisions, grid);
  let sparse = 0;
  for (let t = 0; t < decisions.length; t++) if (decisions[t]) sparse++;
  return (sparse * (1 - grid.n / grid.m) * grid.tileRows * grid.tileCols) / (shape[0]! * shape[1]!);
}
