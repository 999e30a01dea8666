// The two halves of a predicted layer: the recorder at the layer's input site predicts which channels the
// consuming site will keep (x itself is left unchanged), and the consumer zeroes the others.

import { ShapeError } from '@sparse/tensor';
import type { Site, SiteSparsifier } from '../types.js';
import { applyKeepMask, type LayerLink } from './link.js';
import { checkRows } from './layers.js';
import type { TopSet } from './select.js';

/** Expands a selection of groups [tokens, groups] to a keep mask [tokens, groups * groupWidth]. */
export function expandSelection(set: TopSet, groupWidth: number): Uint8Array {
  const width = set.n * groupWidth;
  const keep = new Uint8Array(set.tokens * width);
  for (let t = 0; t < set.tokens; t++) {
    for (let i = 0; i < set.k; i++) {
      const start = t * width + set.indices[t * set.k + i]! * groupWidth;
      keep.fill(1, start, start + groupWidth);
    }
  }
  return keep;
}

/** The input site's sparsifier: records `predict(x)` on the link and keeps every entry. */
export function recorderSparsifier(site: Site, link: LayerLink, predict: (x: Float32Array, tokens: number) => Uint8Array, state: () => unknown): SiteSparsifier {
  return {
    site: site.name,
    apply(x, tokens) {
      checkRows(site, x, tokens);
      link.record(site.name, tokens, predict(x, tokens));
      return x.length;
    },
    state,
  };
}

/** The consuming site's sparsifier: zeroes what the recorder of this forward did not predict. */
export function consumerSparsifier(site: Site, link: LayerLink, state: () => unknown): SiteSparsifier {
  return {
    site: site.name,
    apply(x, tokens) {
      if (!Number.isInteger(tokens) || tokens < 0 || x.length !== tokens * site.features) {
        throw new ShapeError(`${site.name}: x has ${x.length} values, expected ${tokens} tokens x ${site.features} features`);
      }
      return applyKeepMask(x, link.take(site.name, tokens, site.features));
    },
    state,
  };
}
