import { describe, expect, it } from 'vitest';
import { markupProblem } from './check-markup.js';

describe('markupProblem (the test checker itself)', () => {
  it('accepts balanced markup and rejects each kind of fault', () => {
    expect(markupProblem('<!DOCTYPE html><html><head><meta charset="utf-8"><style>a>b{}</style></head><body><p>a &amp; b</p><svg><rect x="1"/></svg></body></html>')).toBeNull();
    expect(markupProblem('<p><b>x</p></b>')).toMatch(/closes/);
    expect(markupProblem('<p>x')).toMatch(/unclosed: p/);
    expect(markupProblem('<p>1 < 2</p>')).toMatch(/malformed/);
    expect(markupProblem('<p>a & b</p>')).toMatch(/stray/);
    expect(markupProblem("<p class='x'>a</p>")).toMatch(/malformed/);
    expect(markupProblem('<p title="a<b">a</p>')).toMatch(/malformed/);
  });
});
