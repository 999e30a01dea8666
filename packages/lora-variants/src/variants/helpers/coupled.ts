// Coupled groups (variants/types.ts): the channels each unit of a model unit (an attention head, an MLP
// channel) owns on each member weight. Variants with a `coupled` init select units, then read each
// member's channels from here, so the selection agrees across the group's weights by construction.
import { ArgumentError, ShapeError } from '@sparse/tensor';
import type { CoupledGroup, CoupledMember } from '../types.js';

/** The sorted, distinct channels the `units` own on `member` (an axis of length `len`). */
export function unitChannels(member: CoupledMember, units: readonly number[], len: number): Int32Array {
  const set = new Set<number>();
  for (const span of member.spans) {
    for (const u of units) {
      const start = span.offset + Math.floor(u / span.share) * span.size;
      if (start < 0 || start + span.size > len) throw new ShapeError(`coupled group member '${member.name}': unit ${u} covers ${member.axis}s ${start}..${start + span.size - 1}, outside its ${len} ${member.axis}s`);
      for (let q = 0; q < span.size; q++) set.add(start + q);
    }
  }
  return Int32Array.from([...set].sort((a, b) => a - b));
}

/** Checks a group's fields (units, spans), naming the group and field. */
export function checkGroup(group: CoupledGroup, where: string): void {
  if (!Number.isInteger(group.units) || group.units < 1) throw new ArgumentError(`${where}: group '${group.name}': units must be a positive integer, got ${String(group.units)}`);
  if (group.members.length === 0) throw new ArgumentError(`${where}: group '${group.name}' has no members`);
  for (const m of group.members) {
    if (m.axis !== 'row' && m.axis !== 'column') throw new ArgumentError(`${where}: group '${group.name}': member '${m.name}' has axis ${JSON.stringify(m.axis)}, not 'row' or 'column'`);
    if (m.spans.length === 0) throw new ArgumentError(`${where}: group '${group.name}': member '${m.name}' has no spans`);
    for (const s of m.spans) {
      if (![s.offset, s.size, s.share].every(Number.isInteger) || s.offset < 0 || s.size < 1 || s.share < 1) {
        throw new ArgumentError(`${where}: group '${group.name}': member '${m.name}' has span ${JSON.stringify(s)} (offset ≥ 0, size ≥ 1, share ≥ 1 integers)`);
      }
    }
  }
}
