// The channel between two sites of one layer: the site that sees the layer's input records which
// channels (or tokens) to keep, and the site that consumes them, visited later in the same forward,
// zeroes the rest. Both sparsifiers hold the same LayerLink.

import { ArgumentError, ShapeError } from '@sparse/tensor';

/** A recorded keep mask [tokens, width], taken once by the consuming site. */
export class LayerLink {
  #tokens = -1;
  #keep: Uint8Array | undefined;
  #from = '';

  constructor(
    /** Names the layer in errors ('block 3 mlp'). */
    readonly label: string,
  ) {}

  /** Records the keep mask of this forward (replacing any earlier one that was never taken). */
  record(from: string, tokens: number, keep: Uint8Array): void {
    this.#tokens = tokens;
    this.#keep = keep;
    this.#from = from;
  }

  /** The mask recorded for this forward; it is used up, so the next forward must record again. */
  take(site: string, tokens: number, width: number): Uint8Array {
    const keep = this.#keep;
    if (keep === undefined) {
      throw new ArgumentError(
        `${site}: no prediction recorded for ${this.label}: apply the layer's input site first in each forward ` +
          `(and, after restore, restore every site of the model with the same parsed config object)`,
      );
    }
    if (tokens !== this.#tokens) {
      throw new ShapeError(`${site}: applied to ${tokens} tokens but ${this.#from} recorded a prediction for ${this.#tokens} tokens (${this.label})`);
    }
    if (keep.length !== tokens * width) throw new ShapeError(`${site}: the recorded mask has ${keep.length} entries, expected ${tokens} x ${width}`);
    this.#keep = undefined;
    return keep;
  }
}

/** Sparsifiers restored separately find what they share here: one map per parsed config object. */
const restored = new WeakMap<object, Map<string, unknown>>();

/**
 * The object named `key` shared by the sparsifiers restored with this (parsed) config object, made by `make`
 * on first use. Restoring every site of a model with the same config object links the sites of each layer.
 */
export function restoredShared<T>(config: object, key: string, make: () => T): T {
  let shared = restored.get(config);
  if (shared === undefined) restored.set(config, (shared = new Map()));
  if (!shared.has(key)) shared.set(key, make());
  return shared.get(key) as T;
}

/** The link named `key` among the sparsifiers restored with this (parsed) config object. */
export function restoredLink(config: object, key: string, label: string): LayerLink {
  return restoredShared(config, `link:${key}`, () => new LayerLink(label));
}

/** Zeroes the entries of x [tokens, width] whose mask entry is 0; returns how many stayed (nonzero or kept). */
export function applyKeepMask(x: Float32Array, keep: Uint8Array): number {
  let kept = 0;
  for (let i = 0; i < x.length; i++) {
    if (keep[i] === 1) kept++;
    else x[i] = 0;
  }
  return kept;
}
