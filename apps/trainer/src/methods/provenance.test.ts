// Every method a recipe can name says what it is: the paper it follows (or that it follows none) and
// each known way it departs from it. The trainer sees every registry through methodsOf, so this is the
// one place that covers them all: the trainer's own entries and those derived from @sparse/pruners,
// @sparse/lora-variants, @sparse/activation and @sparse/attention.
import { activationMethods } from '@sparse/activation';
import { attentionMethods } from '@sparse/attention';
import { variants } from '@sparse/lora-variants';
import { pruners } from '@sparse/pruners';
import { provenanceProblems } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { methodsText } from '../cli/main.js';
import { getMethod, methodsOf, registerTrainerMethod } from './registry.js';
import { METHOD_KINDS } from './types.js';

describe('method provenance (paper, differs)', () => {
  it.each(METHOD_KINDS)('every %s method names its paper and lists its departures', (kind) => {
    const methods = methodsOf(kind);
    expect(methods.length, `no ${kind} methods`).toBeGreaterThan(0);
    expect(provenanceProblems(methods, 'sparse-train')).toEqual([]);
    for (const m of methods) {
      expect(m.paper!.trim().length, `${kind}/${m.name} paper`).toBeGreaterThan(0);
      for (const d of m.differs!) expect(d.trim().length, `${kind}/${m.name} differs entry`).toBeGreaterThan(0);
    }
  });

  it('derived methods carry their package entry\'s paper and differs unchanged', () => {
    const cases = [
      ['prune', pruners.entries()],
      ['adapt', variants.entries().filter((v) => methodsOf('adapt').some((m) => m.name === v.name && m.from === '@sparse/lora-variants'))],
      ['activation', activationMethods.entries()],
      ['attention', attentionMethods.entries()],
    ] as const;
    for (const [kind, entries] of cases) {
      expect(entries.length).toBeGreaterThan(0);
      for (const e of entries) {
        const m = getMethod(kind, e.name);
        if (m.from === '@sparse/trainer') continue; // the trainer's own entry wins a name clash
        expect(m.paper, `${kind}/${e.name}`).toBe(e.paper);
        expect(m.differs, `${kind}/${e.name}`).toBe(e.differs);
      }
    }
  });

  it('the checker names a method that lacks them', () => {
    const { paper: _paper, ...rest } = getMethod('train', 'dense');
    expect(provenanceProblems([{ ...rest, name: 'no-paper' }, { ...getMethod('train', 'dense'), name: 'no-differs', differs: undefined }], 'sparse-train')).toEqual([
      expect.stringMatching(/'no-paper' paper must be a non-empty citation/),
      expect.stringMatching(/'no-differs' differs must be an array/),
    ]);
  });

  it('registerTrainerMethod refuses a blank paper or a blank differs line, naming the method and field', () => {
    const dense = getMethod('train', 'dense');
    expect(() => registerTrainerMethod({ ...dense, name: 'blank-paper', paper: '  ' })).toThrow(/'blank-paper' paper must be a non-empty citation/);
    expect(() => registerTrainerMethod({ ...dense, name: 'blank-line', differs: ['a', ''] })).toThrow(/'blank-line' differs\[1\] must be a non-empty string/);
  });

  it('sparse-train methods prints the paper and a differs line under every method', () => {
    const text = methodsText();
    for (const kind of METHOD_KINDS) {
      for (const m of methodsOf(kind)) {
        const at = text.indexOf(`\n  ${m.name}  (${m.from})  ${m.describe}\n`, text.indexOf(`${kind}:\n`));
        expect(at, `${kind}/${m.name} listed`).toBeGreaterThanOrEqual(0);
        const [, paper, differs] = text.slice(at + 1).split('\n');
        expect(paper).toBe(`    paper: ${m.paper}`);
        expect(differs).toBe(`    differs: ${m.differs!.length === 0 ? 'none' : m.differs!.join('; ')}`);
      }
    }
    expect(methodsText('train')).toMatch(/^ {2}rigl {2}\(@sparse\/masks\).*\n {4}paper: Evci et al\. 2020, Rigging the Lottery.*\n {4}differs: the first update is after `every` steps, not at step 0; /m);
    expect(methodsText('pretrain')).toMatch(/^ {4}differs: none$/m);
  });
});
