// The 'ssf' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const ssfConfigSchema = z.object({}).strict();
export type SSFConfig = z.output<typeof ssfConfigSchema>;
