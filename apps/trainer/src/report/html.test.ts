import { describe, expect, it } from 'vitest';
import { markupProblem } from './check-markup.js';
import { formatBytes, formatInt, formatNumber, renderReportHTML, reportPlots } from './html.js';
import type { ReportData } from './types.js';
import { fullReport } from './__fixtures__/report.js';

const sectionOf = (html: string, id: string) => {
  const m = new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(html);
  if (!m) throw new Error(`no section ${id}`);
  return m[1];
};

describe('renderReportHTML', () => {
  it('has every section, with the numbers given', () => {
    const html = renderReportHTML(fullReport());
    for (const id of ['summary', 'perplexity', 'loss', 'sparsity', 'nm', 'adapters', 'files', 'recipe', 'notes']) expect(html).toContain(`<section id="${id}">`);
    const summary = sectionOf(html, 'summary');
    expect(summary).toContain('812,544');
    expect(summary).toContain('1m47s'); // 106,660 ms in all
    expect(summary).toContain('820 ms');
    expect(summary).toContain('12.3 s');
    expect(summary).toContain('wanda');
    expect(summary).toContain('2:4 on 24 layers');
    // final perplexity and the change since the first evaluation: (5.9876 - 5.4321) / 5.4321 = +10.2%
    expect(summary).toContain('5.988');
    expect(summary).toContain('+10.2%');

    const ppl = sectionOf(html, 'perplexity');
    for (const s of ['after pretrain', 'after prune', 'after adapt', '5.432', '7.891', '1.692', '2.066', '16,384', '+45.3%', '-24.1%']) expect(ppl).toContain(s);
    expect(ppl.match(/class="bar"/g)).toHaveLength(3);

    const loss = sectionOf(html, 'loss');
    expect(loss.match(/<polyline [^>]*stroke-width="2"/g)).toHaveLength(2);
    expect(loss).toContain('adapt (lora)');

    const sp = sectionOf(html, 'sparsity');
    // zeros 384*128*0.5 + 512*128*0.4375 = 53,248 of 122,880 weights (43.3%), so 69,632 nonzero
    for (const s of ['384 × 128', '49,152', '24,576', '50.0%', '43.8%', '0.0%', '122,880', '69,632', '43.3%']) expect(sp).toContain(s);
    expect(sp.match(/class="cell"/g)).toHaveLength(4 + 4 + 1);

    const nm = sectionOf(html, 'nm');
    expect(nm).toContain('1 of 2 layers');
    expect(nm).toContain('✓ valid');
    expect(nm).toContain('✗ invalid');
    expect(nm).toContain('>17<');
    expect(nm).not.toContain('>head<');

    const ad = sectionOf(html, 'adapters');
    // 4096 / 49152 = 8.33%; 5632 / 65536 = 8.59%; totals 9728 / 114688 = 8.48%; 9728 / 812544 = 1.20%
    for (const s of ['lora', 'dora', '4,096', '49,152', '8.33%', '8.59%', '9,728', '114,688', '8.48%', '1.20%']) expect(ad).toContain(s);

    const files = sectionOf(html, 'files');
    // 1700000 / 3250176 = 52.3% of dense, 1.91x smaller
    for (const s of ['1,700,000', '3,250,176', '52.3%', '1.91×', '1.62 MiB', '1,234', '1.21 KiB', 'runs/x/tokenizer.json']) expect(files).toContain(s);
    expect(files.match(/class="bar"/g)).toHaveLength(2);
    // axis in MiB (largest is 3.1 MiB), bar tooltips keep the exact sizes
    expect(files).toContain('>MiB</text>');
    expect(files).toContain('checkpoint (dense): 3.10 MiB');

    expect(sectionOf(html, 'recipe')).toContain('&quot;method&quot;: &quot;wanda&quot;');
    expect(sectionOf(html, 'notes')).toContain('pruned with 64 calibration windows');
  });

  it('is well formed and self-contained', () => {
    const html = renderReportHTML(fullReport());
    expect(markupProblem(html)).toBeNull();
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('escapes markup in every user-supplied string', () => {
    const evil = '<script>alert("x")</script>';
    const data = fullReport();
    data.name = evil;
    data.backend = evil;
    data.model = { architecture: evil, params: 10, details: { [evil]: evil } };
    data.stages = [{ index: 0, kind: evil, method: evil, ms: 1, summary: evil }];
    data.lossCurves = [{ label: evil, points: [{ step: 0, loss: 1 }, { step: 1, loss: 0.5 }] }];
    data.evaluations = [{ label: evil, perplexity: 2, loss: 0.69, tokens: 10 }];
    data.layers = [{ name: evil, shape: [4, 4], sparsity: 0.5, nm: { n: 2, m: 4, valid: true, violations: 0 }, rowBlockSparsity: [0.5, 0.5] }];
    data.adapters = [{ name: evil, variant: evil, trainable: 1, base: 2 }];
    data.files = [{ label: evil, path: evil, bytes: 1, denseBytes: 2 }];
    data.recipe = { name: evil };
    data.notes = [evil];
    const html = renderReportHTML(data);
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(markupProblem(html)).toBeNull();
  });

  it('renders a report with nothing but a name, and with empty lists', () => {
    const bare = renderReportHTML({ name: 'bare' });
    expect(markupProblem(bare)).toBeNull();
    for (const id of ['summary', 'perplexity', 'loss', 'sparsity', 'nm', 'adapters', 'files', 'recipe', 'notes']) expect(bare).toContain(`<section id="${id}">`);
    expect(bare).toContain('No evaluations recorded.');
    expect(bare).not.toContain('<svg');
    expect(reportPlots({ name: 'bare' })).toEqual([]);
    const empty = renderReportHTML({ name: 'e', stages: [], lossCurves: [{ label: 'x', points: [] }], evaluations: [], layers: [], adapters: [], files: [], notes: [], recipe: {} });
    expect(markupProblem(empty)).toBeNull();
    expect(sectionOf(empty, 'recipe')).toContain('<pre>{}</pre>');
  });

  it('copes with a diverged run: NaN and infinite losses', () => {
    const data = fullReport();
    data.evaluations = [
      { label: 'after pretrain', perplexity: 5, loss: 1.6, tokens: 10 },
      { label: 'after prune', perplexity: Number.POSITIVE_INFINITY, loss: Number.POSITIVE_INFINITY, tokens: 10 },
    ];
    data.lossCurves = [{ label: 'train', points: [{ step: 0, loss: 2 }, { step: 1, loss: Number.NaN }, { step: 2, loss: 1 }, { step: 3, loss: 0.5 }] }];
    const html = renderReportHTML(data);
    expect(markupProblem(html)).toBeNull();
    expect(sectionOf(html, 'perplexity')).toContain('∞');
    expect(sectionOf(html, 'perplexity')).toContain('n/a');
    // the NaN splits the curve: a lone point (marker) and a two-point line
    const loss = sectionOf(html, 'loss');
    expect(loss.match(/<polyline [^>]*stroke-width="2"/g)).toHaveLength(1);
    expect(loss).not.toContain('NaN');
  });

  it('rejects malformed data naming the field', () => {
    const bad = (patch: Partial<ReportData> | Record<string, unknown>) => () => renderReportHTML({ ...fullReport(), ...patch } as ReportData);
    expect(bad({ name: 3 })).toThrow(/name must be a string/);
    expect(bad({ layers: [{ name: 'w', shape: [4], sparsity: 0 }] })).toThrow(/layers\[0\] \(w\)\.shape must be \[out, in\]/);
    expect(bad({ layers: [{ name: 'w', shape: [4, 4], sparsity: 1.5 }] })).toThrow(/layers\[0\] \(w\)\.sparsity must be <= 1/);
    expect(bad({ layers: [{ name: 'w', shape: [64, 4], sparsity: 0, rowBlockSparsity: new Array(33).fill(0) }] })).toThrow(/1 to 32 blocks, got 33/);
    expect(bad({ layers: [{ name: 'w', shape: [4, 4], sparsity: 0, nm: { n: 2, m: 4, valid: true, violations: 3 } }] })).toThrow(/valid=true with 3 violations/);
    expect(bad({ files: [{ label: 'f', path: 'p', bytes: -1 }] })).toThrow(/files\[0\]\.bytes must be >= 0/);
    expect(bad({ stages: [{ index: 0, kind: 'train', ms: Number.NaN }] })).toThrow(/stages\[0\]\.ms must be finite/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(bad({ recipe: cyclic })).toThrow(/recipe is not plain JSON/);
    expect(() => renderReportHTML(null as unknown as ReportData)).toThrow(/root must be an object/);
  });
});

describe('number formats', () => {
  it('formats counts, sizes and measurements', () => {
    expect(formatInt(1234567)).toBe('1,234,567');
    expect(formatInt(999)).toBe('999');
    expect(formatInt(-1000)).toBe('-1,000');
    expect(formatNumber(12.3456)).toBe('12.35');
    expect(formatNumber(0.0012346)).toBe('0.001235');
    expect(formatNumber(123456.7)).toBe('123457');
    expect(formatNumber(Number.NaN)).toBe('NaN');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.00 GiB');
  });
});

describe('report fixes', () => {
  it('compares perplexity like with like: the change since the first evaluation on the same data', () => {
    const data = fullReport();
    data.evaluations = [
      { label: 'pretrained', data: 'heldout', perplexity: 5, loss: 1.6, tokens: 100 },
      { label: 'pretrained (shifted task)', data: 'shifted', perplexity: 20, loss: 3, tokens: 100 },
      { label: 'after prune', data: 'heldout', perplexity: 6, loss: 1.8, tokens: 100 },
      { label: 'after finetune (shifted task)', data: 'shifted', perplexity: 10, loss: 2.3, tokens: 100 },
    ];
    const html = renderReportHTML(data);
    const summary = sectionOf(html, 'summary');
    // the last evaluation is on the shifted task: compared with the first shifted one (20 -> 10), not with 5
    expect(summary).toContain('Perplexity change since pretrained (shifted task)');
    expect(summary).toContain('-50.0%');
    expect(summary).not.toContain('+100.0%');
    const ppl = sectionOf(html, 'perplexity');
    // after prune vs pretrained (+20%), after finetune vs pretrained (shifted task) (-50%); never across data sets
    expect(ppl).toContain('+20.0%');
    expect(ppl).toContain('-50.0%');
    expect(ppl).not.toContain('-70.0%');
    expect(ppl).not.toContain('+300.0%'); // pretrained (shifted task) against pretrained
    // no earlier evaluation on the same data: no change row
    data.evaluations = [data.evaluations[0]!, data.evaluations[1]!];
    expect(sectionOf(renderReportHTML(data), 'summary')).not.toContain('Perplexity change since');
  });

  it('draws every stage on one global step axis, each after the steps before it', () => {
    const plot = reportPlots(fullReport()).find((p) => p.name === 'loss')!;
    const texts = plot.scene.shapes.flatMap((s) => (s.kind === 'text' ? [s.text] : []));
    expect(texts).toContain('step (all stages in order)');
    // pretrain covers steps 0..300, so the adapt curve (its steps 0..100) runs 301..401: the axis reaches past 400
    expect(texts.map(Number).filter(Number.isFinite)).toContain(400);
    const lines = plot.scene.shapes.filter((s) => s.kind === 'polyline' && s.width === 2);
    expect(lines).toHaveLength(2);
    const [first, second] = lines.map((l) => (l.kind === 'polyline' ? l.points : []));
    expect(Math.min(...second!.map((p) => p[0]))).toBeGreaterThan(Math.max(...first!.map((p) => p[0])));
  });

  it('lists the architecture once and says the overall sparsity counts linear layers only', () => {
    const data = fullReport();
    data.model = { ...data.model!, details: { ...data.model!.details, architecture: 'gpt' } };
    const summary = sectionOf(renderReportHTML(data), 'summary');
    expect(summary.match(/<td>gpt<\/td>/g)).toHaveLength(1);
    expect(summary).not.toContain('<th>architecture</th>');
    expect(summary).toContain('Overall sparsity (linear layers only; embeddings, norms and biases not counted)');
  });
});
