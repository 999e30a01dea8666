// Module resolution hooks of the `sparse-train` executable (src/bin.ts registers them with
// node:module's register before it loads the CLI).
//
// npm installs each global package's dependencies inside that package. When the @sparse libraries are
// global packages of their own beside the trainer (`npm install -g` of all the tarballs, or of the
// trainer and a library), their optional peers (@tensorflow/tfjs-core, zod, ...) sit in the trainer's
// node_modules, where a library's `import '@tensorflow/tfjs-core'` cannot find them, and the CLI stops
// with ERR_MODULE_NOT_FOUND. These hooks retry such an import from the trainer's own location, for the
// packages the trainer itself depends on and only when it failed from inside an @sparse package, so
// every library then shares the trainer's single copy. Anything else resolves exactly as without them.

/** What bin.ts passes to `initialize`. */
export interface PeerHookData {
  /** A file URL inside the trainer package: the retry resolves from here. */
  trainerURL: string;
  /** The packages the trainer depends on (its package.json `dependencies`, @sparse ones excluded). */
  packages: readonly string[];
}

interface ResolveContext {
  parentURL?: string;
  conditions?: readonly string[];
  importAttributes?: Record<string, string>;
}
interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context?: ResolveContext) => ResolveResult | Promise<ResolveResult>;

let data: PeerHookData | undefined;

/** Called once by node:module's register with bin.ts's `data`. */
export function initialize(given: PeerHookData): void {
  data = given;
}

/** The package a bare specifier names ('@scope/name' or 'name'), or undefined for relative, absolute, URL and builtin specifiers. */
export function packageOf(specifier: string): string | undefined {
  if (specifier === '' || specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('#')) return undefined;
  if (/^[a-zA-Z][a-zA-Z\d+.-]*:/.test(specifier)) return undefined; // node:, file:, data:, ...
  const parts = specifier.split('/');
  if (specifier.startsWith('@')) return parts.length >= 2 && parts[1] !== '' ? `${parts[0]}/${parts[1]}` : undefined;
  return parts[0];
}

/**
 * Where to resolve `specifier` again after it failed from `parentURL`, or undefined to keep the
 * failure: a package the trainer depends on, imported from a file of an installed @sparse package
 * other than the trainer itself.
 */
export function retryFrom(specifier: string, parentURL: string | undefined, hook: PeerHookData): string | undefined {
  const name = packageOf(specifier);
  if (name === undefined || !hook.packages.includes(name)) return undefined;
  if (parentURL === undefined || !parentURL.startsWith('file:')) return undefined;
  const trainerRoot = hook.trainerURL.slice(0, hook.trainerURL.lastIndexOf('/dist/') + 1);
  if (trainerRoot !== '' && parentURL.startsWith(trainerRoot)) return undefined;
  if (!/\/node_modules\/@sparse\/[^/]+\//.test(parentURL)) return undefined;
  return hook.trainerURL;
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND';
}

/** The resolve hook: the default resolution, and on ERR_MODULE_NOT_FOUND one retry per retryFrom. */
export async function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<ResolveResult> {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const from = data !== undefined && isNotFound(error) ? retryFrom(specifier, context.parentURL, data) : undefined;
    if (from === undefined) throw error;
    try {
      return await nextResolve(specifier, { ...context, parentURL: from });
    } catch {
      throw error;
    }
  }
}
