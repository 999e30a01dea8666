// Test helper: a strict little well-formedness check for the HTML and SVG we generate — every
// tag closed in order, attributes double-quoted, no raw '<' or stray '&' in text.

const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link', 'col', 'wbr']);
const ENTITY = /^&(amp|lt|gt|quot|#39|#\d+);/;
const TAG = /^<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z:-]+="[^"<]*")*)\s*(\/?)>/;

/** Returns the first problem found, or null when the markup is well formed. */
export function markupProblem(markup: string): string | null {
  const stack: string[] = [];
  let i = 0;
  const doctype = /^<!DOCTYPE html>/i.exec(markup);
  if (doctype) i = doctype[0].length;
  while (i < markup.length) {
    const c = markup[i];
    if (c === '&') {
      if (!ENTITY.test(markup.slice(i, i + 12))) return `stray '&' at ${i}: ${markup.slice(i, i + 20)}`;
      i++;
      continue;
    }
    if (c !== '<') {
      i++;
      continue;
    }
    const m = TAG.exec(markup.slice(i));
    if (!m) return `malformed tag at ${i}: ${markup.slice(i, i + 40)}`;
    const [whole, closing, rawName, , selfClosing] = m;
    const name = rawName.toLowerCase();
    i += whole.length;
    if (closing) {
      const open = stack.pop();
      if (open !== name) return `</${name}> at ${i} closes <${open ?? 'nothing'}>`;
    } else if (!selfClosing && !VOID.has(name)) {
      stack.push(name);
      if (name === 'style') {
        // CSS is raw text up to </style>
        const end = markup.indexOf('</style>', i);
        if (end < 0) return '<style> never closed';
        if (markup.slice(i, end).includes('<')) return "'<' inside <style>";
        i = end;
      }
    }
  }
  return stack.length > 0 ? `unclosed: ${stack.join(' > ')}` : null;
}
