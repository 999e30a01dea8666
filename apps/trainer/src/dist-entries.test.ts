// The built executable and the library entry share one copy of the trainer's modules (tsup's shared
// chunks): a method registered through `@sparse/trainer` is listed by `sparse-train methods` run in
// the same process through the `bin` file. (CommonJS has the library entry alone.)
import { runInPackage } from '@sparse/config/packaging';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, packageRoot } from './testing/dist.js';

beforeAll(() => ensureDist(), 180_000);

const esm = `import { getMethod, registerTrainerMethod } from '@sparse/trainer';
registerTrainerMethod({ ...getMethod('train', 'dense'), name: 'entry-check', describe: 'registered through the library entry' });
process.argv = [process.argv[0], 'sparse-train', 'methods', 'train'];
const bin = JSON.parse((await import('node:fs')).readFileSync('package.json', 'utf8')).bin['sparse-train'];
await import(bin);
`;

describe('built entry points share one copy of the package', () => {
  it('ESM: a method registered through the library entry is listed by the bin', () => {
    const out = runInPackage(packageRoot, esm, { ext: '.mjs' });
    expect(out).toMatch(/^\s*entry-check\s.*registered through the library entry$/m);
    expect(out).toMatch(/^\s*dense\s/m);
  });
  it('CJS: the library entry loads and lists the same methods', () => {
    const out = runInPackage(packageRoot, `const t = require('@sparse/trainer'); console.log(t.listMethods('train').map((m) => m.name).join(','));`, { ext: '.cjs' });
    expect(out.trim().split(',')).toContain('dense');
  });
});
