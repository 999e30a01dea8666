// Fixed-width unsigned integers packed LSB-first into bytes (used by N:M group indices and bit masks).

/** Bits needed to store an index in [0, m): ceil(log2 m), at least 1. */
export function indexBitsFor(m: number): number {
  return Math.max(1, Math.ceil(Math.log2(m)));
}

export function packedByteLength(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/** Reads the k-th `bits`-wide value (bits <= 24). */
export function readPacked(buf: Uint8Array, bits: number, k: number): number {
  const bit = k * bits;
  const byte = bit >>> 3;
  const shift = bit & 7;
  let word = buf[byte]! | ((buf[byte + 1] ?? 0) << 8) | ((buf[byte + 2] ?? 0) << 16) | ((buf[byte + 3] ?? 0) << 24);
  word >>>= shift;
  return word & ((1 << bits) - 1);
}

/** Writes the k-th `bits`-wide value; the slot must currently be zero (fresh buffers are). */
export function writePacked(buf: Uint8Array, bits: number, k: number, value: number): void {
  let bit = k * bits;
  for (let i = 0; i < bits; i++, bit++) {
    if ((value >>> i) & 1) buf[bit >>> 3]! |= 1 << (bit & 7);
  }
}
