// Saving and loading a TopK autoencoder: as plain JSON, or as a record of Float32Arrays plus a small
// header (what a safetensors writer takes).

import { ShapeError } from '@sparse/tensor';
import { z } from 'zod';
import type { TopKSAE } from './sae.js';

const FORMAT = 'sparse-topk-sae';

const headerSchema = z.strictObject({
  format: z.literal(FORMAT),
  version: z.literal(1),
  features: z.int().min(1),
  latents: z.int().min(1),
  k: z.int().min(1),
  activation: z.enum(['none', 'relu']),
});

const jsonSchema = headerSchema.extend({
  wEnc: z.array(z.number()),
  bEnc: z.array(z.number()),
  wDec: z.array(z.number()),
  bPre: z.array(z.number()),
});

export type SAEHeader = z.output<typeof headerSchema>;
export type SAEJson = z.output<typeof jsonSchema>;

/** The four parameter names and their shapes. */
const shapes = (h: SAEHeader): Record<'wEnc' | 'bEnc' | 'wDec' | 'bPre', number> => ({
  wEnc: h.latents * h.features,
  bEnc: h.latents,
  wDec: h.features * h.latents,
  bPre: h.features,
});

function header(sae: TopKSAE): SAEHeader {
  return { format: FORMAT, version: 1, features: sae.features, latents: sae.latents, k: sae.k, activation: sae.activation };
}

function build(h: SAEHeader, arrays: Record<'wEnc' | 'bEnc' | 'wDec' | 'bPre', ArrayLike<number> | undefined>, where: string): TopKSAE {
  if (h.k > h.latents) throw new ShapeError(`${where}: k = ${h.k} exceeds latents = ${h.latents}`);
  const out = {} as Record<'wEnc' | 'bEnc' | 'wDec' | 'bPre', Float32Array>;
  for (const [name, n] of Object.entries(shapes(h)) as ['wEnc' | 'bEnc' | 'wDec' | 'bPre', number][]) {
    const a = arrays[name];
    if (a === undefined || a.length !== n) throw new ShapeError(`${where}: ${name} must have ${n} values, got ${a === undefined ? 'none' : a.length}`);
    out[name] = Float32Array.from(a);
  }
  return { features: h.features, latents: h.latents, k: h.k, activation: h.activation, ...out };
}

/** Plain JSON (numbers are the float32 values, so a round trip is exact). */
export function saeToJSON(sae: TopKSAE): SAEJson {
  return { ...header(sae), wEnc: Array.from(sae.wEnc), bEnc: Array.from(sae.bEnc), wDec: Array.from(sae.wDec), bPre: Array.from(sae.bPre) };
}

/** Rebuilds an autoencoder from saeToJSON's output (after JSON.parse); a wrong shape is a ShapeError. */
export function saeFromJSON(json: unknown): TopKSAE {
  const r = jsonSchema.safeParse(json);
  if (!r.success) throw new ShapeError(`saeFromJSON: not a ${FORMAT} v1 object: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return build(r.data, r.data, 'saeFromJSON');
}

/** The header and the parameters as Float32Arrays (copies). */
export function saeToRecord(sae: TopKSAE): { header: SAEHeader; tensors: Record<string, Float32Array> } {
  return { header: header(sae), tensors: { wEnc: sae.wEnc.slice(), bEnc: sae.bEnc.slice(), wDec: sae.wDec.slice(), bPre: sae.bPre.slice() } };
}

/** Rebuilds an autoencoder from saeToRecord's output. */
export function saeFromRecord(record: { header: unknown; tensors: Record<string, Float32Array> }): TopKSAE {
  const r = headerSchema.safeParse(record.header);
  if (!r.success) throw new ShapeError(`saeFromRecord: not a ${FORMAT} v1 header: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const t = record.tensors;
  return build(r.data, { wEnc: t.wEnc, bEnc: t.bEnc, wDec: t.wDec, bPre: t.bPre }, 'saeFromRecord');
}
