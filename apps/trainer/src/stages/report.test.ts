import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOnDisk, reportFiles } from './report.js';

const dir = mkdtempSync(join(tmpdir(), 'sparse-report-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('report files', () => {
  it('lists a folder (a saved PEFT adapter) with the bytes of all the files under it', () => {
    const adapter = join(dir, 'adapter');
    mkdirSync(join(adapter, 'nested'), { recursive: true });
    writeFileSync(join(adapter, 'adapter_model.safetensors'), new Uint8Array(1000));
    writeFileSync(join(adapter, 'adapter_config.json'), '{"r": 8}');
    writeFileSync(join(adapter, 'nested', 'extra.bin'), new Uint8Array(24));
    const model = join(dir, 'model.safetensors');
    writeFileSync(model, new Uint8Array(77));
    expect(bytesOnDisk(adapter)).toBe(1000 + 8 + 24);
    expect(bytesOnDisk(join(dir, 'missing'))).toBeUndefined();
    const files = reportFiles([
      { label: 'adapter a (PEFT)', path: adapter, bytes: 0 },
      { label: 'model', path: model, bytes: 77, denseBytes: 100 },
      { label: 'gone', path: join(dir, 'gone'), bytes: 5 },
    ]);
    expect(files.map((f) => f.bytes)).toEqual([1032, 77, 5]);
    expect(files[1]).toEqual({ label: 'model', path: model, bytes: 77, denseBytes: 100 });
  });
});
