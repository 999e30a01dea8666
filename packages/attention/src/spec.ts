// The recipe form of a static pattern: `{ pattern: 'sliding-window', window: 64, sinks: 4, blockSize: 32 }`,
// `{ and: [spec, ...] }`, `{ or: [...] }`, `{ not: spec }`. patternSpecSchema is a zod schema (a recipe's
// `attention:` field can use it directly); a refused spec reports each failing field by its path, nested
// parts included ('and.1.window').

import { closestNames, ConfigError, type ConfigIssue } from '@sparse/tensor';
import { z } from 'zod';
import {
  and,
  blockDiagonal,
  causal,
  dilated,
  documents,
  full,
  globalTokens,
  multiDiagonal,
  not,
  or,
  prefixSharing,
  sinks,
  slidingWindow,
  toBlockMask,
  verticalStripe,
  type Pattern,
} from './patterns.js';
import type { BlockMask } from './mask.js';

const intField = (name: string) => z.int({ error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be an integer`) });
const posInt = (name: string) => intField(name).min(1, `${name} must be at least 1`);
const natInt = (name: string) => intField(name).min(0, `${name} must be at least 0`);
const blockSize = posInt('blockSize').optional();
const causalFlag = z.boolean().default(true);

const leafSchemas = {
  causal: z.strictObject({ pattern: z.literal('causal'), blockSize }),
  full: z.strictObject({ pattern: z.literal('full'), blockSize }),
  'sliding-window': z.strictObject({ pattern: z.literal('sliding-window'), window: posInt('window'), sinks: natInt('sinks').default(0), causal: causalFlag, blockSize }),
  dilated: z.strictObject({ pattern: z.literal('dilated'), window: posInt('window'), dilation: posInt('dilation'), causal: causalFlag, blockSize }),
  sinks: z.strictObject({ pattern: z.literal('sinks'), n: natInt('n'), blockSize }),
  'global-tokens': z.strictObject({ pattern: z.literal('global-tokens'), indices: z.array(natInt('indices')), blockSize }),
  'block-diagonal': z.strictObject({ pattern: z.literal('block-diagonal'), size: posInt('size'), blockSize }),
  'multi-diagonal': z.strictObject({ pattern: z.literal('multi-diagonal'), offsets: z.array(z.int('offsets must be integers')).min(1, 'offsets must list at least one offset'), width: posInt('width').default(1), blockSize }),
  'vertical-stripe': z
    .strictObject({ pattern: z.literal('vertical-stripe'), columns: z.array(natInt('columns')).optional(), every: posInt('every').optional(), offset: natInt('offset').default(0), blockSize })
    .refine((s) => (s.columns === undefined) !== (s.every === undefined), { message: 'give either columns or every', path: ['columns'] })
    .refine((s) => s.every === undefined || s.offset < s.every, { message: 'offset must be less than every', path: ['offset'] }),
  documents: z.strictObject({ pattern: z.literal('documents'), segmentIds: z.array(z.int('segmentIds must be integers')).min(1, 'segmentIds must not be empty'), blockSize }),
  'prefix-sharing': z.strictObject({ pattern: z.literal('prefix-sharing'), prompt: posInt('prompt'), responses: z.array(posInt('responses')).min(1, 'responses must list at least one length'), blockSize }),
} as const;

/** The names of the leaf patterns a spec may give. */
export const PATTERN_NAMES = Object.keys(leafSchemas) as (keyof typeof leafSchemas)[];

type LeafSchemas = typeof leafSchemas;
export type LeafPatternSpec = { [K in keyof LeafSchemas]: z.output<LeafSchemas[K]> }[keyof LeafSchemas];
export type LeafPatternSpecInput = { [K in keyof LeafSchemas]: z.input<LeafSchemas[K]> }[keyof LeafSchemas];
/** A parsed spec (defaults filled in). */
export type PatternSpec = LeafPatternSpec | { and: PatternSpec[]; blockSize?: number } | { or: PatternSpec[]; blockSize?: number } | { not: PatternSpec; blockSize?: number };
/** A spec as written in a recipe. */
export type PatternSpecInput =
  | LeafPatternSpecInput
  | { and: PatternSpecInput[]; blockSize?: number }
  | { or: PatternSpecInput[]; blockSize?: number }
  | { not: PatternSpecInput; blockSize?: number };

type Parsed = { ok: true; value: PatternSpec } | { ok: false; issues: ConfigIssue[] };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseSpec(v: unknown, path: PropertyKey[], top: boolean): Parsed {
  const fail = (at: PropertyKey[], message: string): Parsed => ({ ok: false, issues: [{ path: [...path, ...at], message }] });
  if (!isObject(v)) return fail([], `expected a pattern spec ({ pattern: ... } or { and | or | not: ... }), got ${Array.isArray(v) ? 'an array' : String(v)}`);
  if (!top && v.blockSize !== undefined) return fail(['blockSize'], 'blockSize belongs to the outermost spec only');
  const ops = (['and', 'or', 'not'] as const).filter((k) => k in v);
  if (ops.length > 0) {
    if (ops.length > 1 || 'pattern' in v) return fail([ops[0]!], `a spec is one of { pattern }, { and }, { or }, { not }; got keys ${Object.keys(v).join(', ')}`);
    const op = ops[0]!;
    for (const key of Object.keys(v)) if (key !== op && key !== 'blockSize') return fail([key], `unknown field '${key}' next to '${op}'`);
    if (v.blockSize !== undefined && !(Number.isInteger(v.blockSize) && (v.blockSize as number) >= 1)) return fail(['blockSize'], 'blockSize must be an integer of at least 1');
    const extra = v.blockSize === undefined ? {} : { blockSize: v.blockSize as number };
    if (op === 'not') {
      const r = parseSpec(v.not, [...path, 'not'], false);
      return r.ok ? { ok: true, value: { not: r.value, ...extra } } : r;
    }
    const list = v[op];
    if (!Array.isArray(list) || list.length === 0) return fail([op], `${op} must be a non-empty array of pattern specs`);
    const parts: PatternSpec[] = [];
    const issues: ConfigIssue[] = [];
    list.forEach((p, k) => {
      const r = parseSpec(p, [...path, op, k], false);
      if (r.ok) parts.push(r.value);
      else issues.push(...r.issues);
    });
    if (issues.length > 0) return { ok: false, issues };
    return { ok: true, value: (op === 'and' ? { and: parts, ...extra } : { or: parts, ...extra }) as PatternSpec };
  }
  const name = v.pattern;
  if (typeof name !== 'string' || !(name in leafSchemas)) {
    const near = typeof name === 'string' ? closestNames(name, PATTERN_NAMES, 1) : [];
    const hint = near.length > 0 ? `; did you mean '${near[0]}'?` : '';
    return fail(['pattern'], `unknown pattern ${JSON.stringify(name)}${hint} (one of ${PATTERN_NAMES.join(', ')})`);
  }
  const r = (leafSchemas[name as keyof LeafSchemas] as z.ZodType<LeafPatternSpec>).safeParse(v);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, issues: r.error.issues.map((i) => ({ path: [...path, ...i.path], message: i.message })) };
}

/** The zod schema of a pattern spec: validates (naming each failing field by its path) and fills in defaults. */
export const patternSpecSchema: z.ZodType<PatternSpec, PatternSpecInput> = z.unknown().transform((v, ctx) => {
  const r = parseSpec(v, [], true);
  if (r.ok) return r.value;
  for (const issue of r.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path as (string | number)[] });
  return z.NEVER;
}) as unknown as z.ZodType<PatternSpec, PatternSpecInput>;

export interface PatternFromSpec {
  pattern: Pattern;
  /** The spec's blockSize, when it gives one. */
  blockSize?: number;
  /** Position ids of a prefix-sharing part (the first one), when the spec has one. */
  positionIds?: Int32Array;
  /** The parsed spec (defaults filled in). */
  spec: PatternSpec;
}

function build(s: PatternSpec, found: { positionIds?: Int32Array }): Pattern {
  if ('and' in s) return and(...s.and.map((p) => build(p, found)));
  if ('or' in s) return or(...s.or.map((p) => build(p, found)));
  if ('not' in s) return not(build(s.not, found));
  switch (s.pattern) {
    case 'causal':
      return causal();
    case 'full':
      return full();
    case 'sliding-window': {
      const w = slidingWindow(s.window, { causal: s.causal });
      if (s.sinks === 0) return w;
      // Sinks are keys every query sees; a causal model still sees them only from their own position on.
      return or(w, s.causal ? and(sinks(s.sinks), causal()) : sinks(s.sinks));
    }
    case 'dilated':
      return dilated(s.window, s.dilation, { causal: s.causal });
    case 'sinks':
      return sinks(s.n);
    case 'global-tokens':
      return globalTokens(s.indices);
    case 'block-diagonal':
      return blockDiagonal(s.size);
    case 'multi-diagonal':
      return multiDiagonal(s.offsets, s.width);
    case 'vertical-stripe':
      return s.columns !== undefined ? verticalStripe(s.columns) : verticalStripe({ every: s.every!, offset: s.offset });
    case 'documents':
      return documents(s.segmentIds);
    case 'prefix-sharing': {
      const ps = prefixSharing({ prompt: s.prompt, responses: s.responses });
      found.positionIds ??= ps.positionIds;
      return ps.pattern;
    }
  }
}

/** Parses a spec (a refused one throws ConfigError naming each field, `where` first) and builds its pattern. */
export function patternFromSpec(spec: unknown, where = 'attention'): PatternFromSpec {
  const r = parseSpec(spec, [], true);
  if (!r.ok) throw new ConfigError(where, r.issues);
  const found: { positionIds?: Int32Array } = {};
  const pattern = build(r.value, found);
  return { pattern, spec: r.value, ...(r.value.blockSize !== undefined ? { blockSize: r.value.blockSize } : {}), ...(found.positionIds ? { positionIds: found.positionIds } : {}) };
}

/** The BlockMask of a spec at a sequence length; the spec's blockSize wins over `blockSize` here. */
export function blockMaskFromSpec(spec: unknown, opts: { seq: number; blockSize?: number; heads?: number }, where = 'attention'): BlockMask {
  const p = patternFromSpec(spec, where);
  const bs = p.blockSize ?? opts.blockSize;
  if (bs === undefined) throw new ConfigError(where, [{ path: ['blockSize'], message: 'blockSize is required (in the spec or the options)' }]);
  return toBlockMask(p.pattern, { seq: opts.seq, blockSize: bs, heads: opts.heads });
}
