// A config schema's top-level fields (name, type, default, description), read from its JSON schema:
// `sparse-train methods` lists them, and recipe errors name them.

import { z } from 'zod';

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

/** A limit as shown: none, or one at the safe-integer edge zod puts on integers, is ∞ (or -∞). */
function bound(v: unknown, infinite: string): string {
  if (v === undefined || v === null) return infinite;
  if (typeof v === 'number' && (!Number.isFinite(v) || Math.abs(v) >= Number.MAX_SAFE_INTEGER)) return v < 0 ? '-∞' : '∞';
  return String(v);
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
    if (bound(lo, '-∞') !== '-∞' || bound(hi, '∞') !== '∞') {
      s += ` ${p.exclusiveMinimum !== undefined ? '(' : '['}${bound(lo, '-∞')}, ${bound(hi, '∞')}${p.exclusiveMaximum !== undefined ? ')' : ']'}`;
    }
  }
  if (s === 'array' && p.items && typeof p.items === 'object') s = `${describeType(p.items as Record<string, unknown>)}[]`;
  return s;
}
