// Every method a recipe stage can name, gathered from the packages' registries (pruners, adapter
// variants) and the trainer's own (training modes, distillation). `sparse-train methods` prints
// this catalogue; recipe validation parses each stage's config with the method's schema.

import { expertPruneConfigSchema, getPruner, listPruners } from '@sparse/pruners';
import { getVariant, listVariants } from '@sparse/lora-variants';
import { listTfForms } from '@sparse/lora-variants/tfjs';
import { z } from 'zod';
import type { StageKind } from './schema.js';

export interface ConfigIssue {
  path: readonly PropertyKey[];
  message: string;
}

export type ParseOutcome = { ok: true; value: Record<string, unknown> } | { ok: false; issues: ConfigIssue[] };

export interface MethodInfo {
  kind: StageKind;
  name: string;
  description: string;
  /** The package the method comes from. */
  from: string;
  /** The config schema, when the method has a zod one (fields and defaults are listed from it). */
  schema?: z.ZodType;
  parse(config: unknown): ParseOutcome;
}

function fromZod(schema: z.ZodType): (config: unknown) => ParseOutcome {
  return (config) => {
    const r = schema.safeParse(config ?? {});
    return r.success ? { ok: true, value: r.data as Record<string, unknown> } : { ok: false, issues: r.error.issues.map((i) => ({ path: i.path, message: i.message })) };
  };
}

/** N:M training through the mask (@sparse/nm/tfjs estimators); the mask is recomputed from the weights every `recomputeEvery` steps. */
export const nmTrainConfigSchema = z.strictObject({
  n: z.int().min(1).default(2),
  m: z.int().min(2).default(4),
  /** ste: straight-through; sr-ste: plus lambda (1-mask) W on pruned weights; progressive: decayed gradient to pruned weights. */
  estimator: z.enum(['ste', 'sr-ste', 'progressive']).default('sr-ste'),
  /** SR-STE's decay on pruned weights. */
  lambda: z.number().min(0).default(2e-4),
  /** Progressive: the factor on pruned weights' gradient goes from 1 to this over the stage (cosine). */
  finalDecay: z.number().min(0).max(1).default(0),
  recomputeEvery: z.int().min(1).default(1),
}).refine((c) => c.n < c.m, { message: 'N:M needs n < m', path: ['n'] });

/** CAST's AdamS: dense forward, an adaptive L1 pull of the currently pruned N:M entries toward zero, then a hard N:M mask. */
export const adamsConfigSchema = z.strictObject({
  n: z.int().min(1).default(2),
  m: z.int().min(2).default(4),
  /** L1 decay strength on pruned entries (through Adam's normalization). */
  lambda: z.number().min(0).default(0.01),
  /** Recompute the masks from |W| every this many steps (CAST's T1). */
  every: z.int().min(1).default(10),
  /** After the final hard mask, rescale each output row's kept weights to its pre-pruning L2 norm. */
  scale: z.boolean().default(true),
}).refine((c) => c.n < c.m, { message: 'N:M needs n < m', path: ['n'] });

/** Global magnitude: one |W| ranking across every targeted layer. */
export const globalMagnitudeConfigSchema = z.strictObject({
  sparsity: z.number().min(0).lt(1, 'sparsity must be in [0, 1)').default(0.5),
});

/** CFSP structured pruning of MLP neurons: block budget from block influence, neurons by activation-weighted scores. */
export const cfspConfigSchema = z.strictObject({
  /** Fraction of all MLP neurons pruned. */
  sparsity: z.number().min(0).lt(1, 'sparsity must be in [0, 1)').default(0.25),
  /** Steepness of the sigmoid over standardized block importances. */
  a: z.number().positive().default(1),
  blockMetric: z.enum(['angular', 'cosine', 'mse', 'mae']).default('angular'),
  metric: z.enum(['cfsp', 'wanda', 'magnitude']).default('cfsp'),
});

/** SquareHead (Kurtic et al.): per-block L2 between student and teacher hidden states, each normalized by the teacher's. */
export const squareHeadConfigSchema = z.strictObject({
  /** Weight of the summed per-block normalized MSE. */
  featureWeight: z.number().min(0).default(1),
  /** Weight of the next-token cross-entropy on the data. */
  ceWeight: z.number().min(0).default(1),
  /** Weight of the KL divergence from the teacher's next-token distribution. */
  logitWeight: z.number().min(0).default(0),
});

/** Sparse fine-tuning (SpIEL-style): a trainable delta on a random support of each targeted weight, Adam on its values only. */
export const sftConfigSchema = z.strictObject({
  /** Fraction of each weight's entries trained. */
  density: z.number().gt(0).max(1).default(0.01),
  /** Drop-and-regrow every this many steps (0: keep the initial support). */
  regrowEvery: z.int().min(0).default(0),
  /** Fraction of the active entries dropped and regrown by accumulated gradient at each reselection. */
  regrowFraction: z.number().gt(0).max(1).default(0.3),
  weightDecay: z.number().min(0).default(0),
});

/** MeZO (Malladi et al.): SPSA with seeded perturbations, two forward passes per step, no gradients stored. */
export const mezoConfigSchema = z.strictObject({
  /** Perturbation scale. */
  eps: z.number().positive().default(1e-3),
});

/** Sparse MeZO: perturb and update only the smallest-magnitude fraction of each targeted weight. */
export const sparseMezoConfigSchema = z.strictObject({
  eps: z.number().positive().default(1e-3),
  /** Fraction of each weight's entries (the smallest |w|) that are perturbed and updated. */
  fraction: z.number().gt(0).max(1).default(0.75),
});

const trainerMethods: MethodInfo[] = ([
  { kind: 'pretrain', name: 'dense', description: 'dense training of every parameter (Adam, warmup + cosine decay)', from: '@sparse/trainer', schema: z.strictObject({}) },
  { kind: 'train', name: 'dense', description: 'dense training; pruned weights may grow back', from: '@sparse/trainer', schema: z.strictObject({}) },
  { kind: 'train', name: 'masked', description: 'train with the current masks held fixed: pruned weights stay exactly zero', from: '@sparse/trainer', schema: z.strictObject({}) },
  { kind: 'train', name: 'nm', description: 'N:M training from the current weights with STE, SR-STE or progressive gradient flow (@sparse/nm)', from: '@sparse/nm', schema: nmTrainConfigSchema },
  { kind: 'adapt', name: 'sft', description: 'sparse fine-tuning: a delta stored as indices + values, Adam state only for them, optional drop-and-regrow (@sparse/lora-variants)', from: '@sparse/lora-variants', schema: sftConfigSchema },
  { kind: 'adapt', name: 'mezo', description: 'MeZO zeroth-order fine-tuning of the targeted weights: forward passes only (@sparse/lora-variants)', from: '@sparse/lora-variants', schema: mezoConfigSchema },
  { kind: 'adapt', name: 'sparse-mezo', description: 'Sparse MeZO: MeZO on the smallest-magnitude entries only (@sparse/lora-variants)', from: '@sparse/lora-variants', schema: sparseMezoConfigSchema },
  { kind: 'train', name: 'adams', description: "N:M through CAST's AdamS: L1 decay of pruned entries during dense training, then the hard mask and row rescaling (@sparse/nm)", from: '@sparse/nm', schema: adamsConfigSchema },
  { kind: 'prune', name: 'global-magnitude', description: 'magnitude pruning with one ranking across all targeted layers, so layers with many small weights lose more', from: '@sparse/pruners', schema: globalMagnitudeConfigSchema },
  { kind: 'prune', name: 'cfsp', description: 'CFSP structured pruning of MLP neurons: per-block budget from block influence, neurons by activation-weighted importance', from: '@sparse/pruners', schema: cfspConfigSchema },
  { kind: 'prune', name: 'experts', description: 'task-specific expert pruning of MoE layers: keep the experts the router uses most on calibration data (the model is rebuilt smaller)', from: '@sparse/pruners', schema: expertPruneConfigSchema },
  { kind: 'distill', name: 'squarehead', description: 'SquareHead distillation from a dense self-teacher, masks held fixed', from: '@sparse/trainer', schema: squareHeadConfigSchema },
] satisfies Omit<MethodInfo, 'parse'>[]).map((m) => ({ ...m, parse: fromZod(m.schema!) }));

function prunerMethods(): MethodInfo[] {
  return listPruners().map((name) => {
    const def = getPruner(name);
    return { kind: 'prune' as const, name, description: def.describe, from: '@sparse/pruners', schema: def.schema, parse: fromZod(def.schema) };
  });
}

function adapterMethods(): MethodInfo[] {
  const trainable = new Set(listTfForms());
  return listVariants()
    .filter((n) => trainable.has(n))
    .map((name) => {
      const v = getVariant(name);
      return { kind: 'adapt' as const, name, description: v.describe, from: '@sparse/lora-variants', schema: v.schema, parse: fromZod(v.schema) };
    });
}

/** All methods of a stage kind (or of every kind), sorted by kind then name. */
export function listMethods(kind?: StageKind): MethodInfo[] {
  const all = [...trainerMethods, ...prunerMethods(), ...adapterMethods()];
  return all.filter((m) => kind === undefined || m.kind === kind).sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind)));
}

export function findMethod(kind: StageKind, name: string): MethodInfo | undefined {
  return listMethods(kind).find((m) => m.name === name);
}

/** Stage kinds that take a method. */
export const KINDS_WITH_METHOD: readonly StageKind[] = ['pretrain', 'prune', 'train', 'adapt', 'distill'];

export interface FieldInfo {
  name: string;
  type: string;
  default?: unknown;
  required: boolean;
  description?: string;
}

/** The top-level fields of a method's config, from its JSON schema (types, defaults, required). */
export function configFields(schema: z.ZodType | undefined): FieldInfo[] {
  if (schema === undefined) return [];
  let js: Record<string, unknown>;
  try {
    js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  } catch {
    return [];
  }
  const props = (js.properties ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set((js.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, p]) => ({
    name,
    type: describeType(p),
    default: p.default,
    required: required.has(name),
    description: typeof p.description === 'string' ? p.description : undefined,
  }));
}

function describeType(p: Record<string, unknown>): string {
  if (Array.isArray(p.enum)) return p.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (p.const !== undefined) return JSON.stringify(p.const);
  if (Array.isArray(p.anyOf)) return (p.anyOf as Record<string, unknown>[]).map(describeType).join(' | ');
  const t = p.type;
  let s = Array.isArray(t) ? t.join(' | ') : typeof t === 'string' ? t : 'any';
  if (s === 'integer' || s === 'number') {
    const lo = p.minimum ?? p.exclusiveMinimum;
    const hi = p.maximum ?? p.exclusiveMaximum;
    if (lo !== undefined || hi !== undefined) {
      s += ` ${p.exclusiveMinimum !== undefined ? '(' : '['}${lo ?? '-inf'}, ${hi ?? 'inf'}${p.exclusiveMaximum !== undefined ? ')' : ']'}`;
    }
  }
  if (s === 'array' && p.items && typeof p.items === 'object') s = `${describeType(p.items as Record<string, unknown>)}[]`;
  return s;
}
