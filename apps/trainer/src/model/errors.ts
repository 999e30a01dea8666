// Typed errors of model construction and checkpoint files.

import { ArgumentError } from '@sparse/tensor';

/** A model spec (or config) field is missing, of the wrong kind, or inconsistent with another. */
export class ModelSpecError extends ArgumentError {
  /** The offending field, e.g. 'heads' or 'moe.topK'. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`model spec: ${field} ${message}`);
    this.name = 'ModelSpecError';
    this.field = field;
  }
}

/** Throws a ModelSpecError; typed `never` so validators read as guards. */
export function specFail(field: string, message: string): never {
  throw new ModelSpecError(field, message);
}

/** A checkpoint cannot be read as a model: missing or misshapen tensor, unknown architecture, bad config. */
export class CheckpointError extends ArgumentError {
  /** The file (or directory) at fault. */
  readonly file: string;
  /** The tensor at fault, when one is. */
  readonly tensor?: string;
  constructor(file: string, message: string, options?: { tensor?: string; cause?: unknown }) {
    super(`${file}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CheckpointError';
    this.file = file;
    if (options?.tensor !== undefined) this.tensor = options.tensor;
  }
}
