// Lists the GPU code embedded in a binary built by nvcc: every fat binary (magic 0xBA55ED50) holds
// entries of kind 1 (PTX) or 2 (ELF cubin), each with the SM version it targets. Used by the build
// script and the tests to check that the addon and the test program carry sm_80 and sm_90 code, with
// no CUDA tools (cuobjdump) needed.
import { readFileSync } from 'node:fs';

const MAGIC = 0xba55ed50;

/**
 * The fat binaries of `file`: for each, its entries as { kind: 'elf' | 'ptx', sm }.
 * @param {string} file
 * @returns {Array<Array<{ kind: 'elf' | 'ptx' | 'other', sm: number }>>}
 */
export function fatbinEntries(file) {
  const buf = readFileSync(file);
  const out = [];
  let i = buf.indexOf(Buffer.from([0x50, 0xed, 0x55, 0xba]));
  while (i !== -1 && i + 16 <= buf.length) {
    if (buf.readUInt32LE(i) !== MAGIC) break;
    const headerSize = buf.readUInt16LE(i + 6);
    const fatSize = Number(buf.readBigUInt64LE(i + 8));
    let p = i + headerSize;
    const end = Math.min(p + fatSize, buf.length);
    const entries = [];
    while (p + 40 <= end) {
      const kind = buf.readUInt16LE(p);
      const entryHeader = buf.readUInt32LE(p + 4);
      const padded = buf.readUInt32LE(p + 8);
      const sm = buf.readUInt32LE(p + 28);
      if (entryHeader === 0) break;
      entries.push({ kind: kind === 2 ? 'elf' : kind === 1 ? 'ptx' : 'other', sm });
      p += entryHeader + padded;
    }
    out.push(entries);
    i = buf.indexOf(Buffer.from([0x50, 0xed, 0x55, 0xba]), Math.max(end, i + 4));
  }
  return out;
}

/** The SM versions for which every fat binary of `file` carries a cubin (sorted). */
export function cubinArchs(file) {
  const fatbins = fatbinEntries(file).filter((entries) => entries.length > 0);
  if (fatbins.length === 0) return [];
  const sets = fatbins.map((entries) => new Set(entries.filter((e) => e.kind === 'elf').map((e) => e.sm)));
  return [...sets[0]].filter((sm) => sets.every((s) => s.has(sm))).sort((a, b) => a - b);
}
