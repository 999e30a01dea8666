// `sparse-train` is installed on its own (`npm install -g @sparse/trainer`), so nothing installs
// peers for it: every package its run time loads must be one of its dependencies, including the
// optional peers of the @sparse packages that it uses (tfjs-core, tfjs-backend-cpu, zod). Read from
// the built dist files, following the imports into the @sparse packages they load; a dynamic import
// of a computed name (tfjs-node, tfjs-node-gpu, tfjs-backend-wasm, detected at run time) is not one.
import { undeclaredImports } from '@sparse/config/packaging';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, packageRoot } from './testing/dist.js';

beforeAll(() => ensureDist(), 180_000);

describe('run-time dependencies of the built trainer', () => {
  it('declares everything its dist and the @sparse packages it loads import', () => {
    const result = undeclaredImports(packageRoot, { app: true });
    expect(result.reached).toEqual(['@sparse/activation', '@sparse/attention', '@sparse/kernels-cpu', '@sparse/lora-variants', '@sparse/masks', '@sparse/nm', '@sparse/pruners', '@sparse/tensor', '@sparse/trainer']);
    expect(result.undeclared).toEqual([]);
    expect(result.peersNotProvided).toEqual([]);
  });
});
