// Runs the JavaScript examples of a package README against the package's built dist, the way a
// user would: each ```js block is written beside package.json (so `import '@scope/name'` resolves
// through the package's own exports map) and executed with node. Returns each block's output.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Extracts the ```js / ```javascript blocks of a markdown file. */
export function extractJsBlocks(markdown) {
  const blocks = [];
  const re = /```(?:js|javascript|mjs)\n([\s\S]*?)```/g;
  let m;
  while ((m = re.exec(markdown)) !== null) blocks.push(m[1]);
  return blocks;
}

/** @param {string} packageDir @returns {{ code: string, stdout: string }[]} */
export function runReadmeExamples(packageDir, { timeoutMs = 120_000 } = {}) {
  const blocks = extractJsBlocks(readFileSync(join(packageDir, 'README.md'), 'utf8'));
  if (blocks.length === 0) throw new Error(`${packageDir}/README.md has no \`\`\`js example`);
  return blocks.map((code, i) => {
    const file = join(packageDir, `.readme-example-${process.pid}-${i}.mjs`);
    writeFileSync(file, code);
    try {
      const stdout = execFileSync(process.execPath, [file], { cwd: packageDir, encoding: 'utf8', timeout: timeoutMs });
      return { code, stdout };
    } finally {
      rmSync(file, { force: true });
    }
  });
}
