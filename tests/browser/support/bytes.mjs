// Deterministic file contents, generated the same way in node and in the page (this module is
// served to the browser too), so big files never need to cross the test boundary.

/**
 * `size` pseudo-random bytes from `seed` (xorshift32): cheap, and different for every seed.
 * @param {number} size
 * @param {number} seed
 * @returns {Uint8Array}
 */
export function generateBytes(size, seed) {
  const bytes = new Uint8Array(size);
  const words = new Uint32Array(bytes.buffer, 0, Math.floor(size / 4));
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < words.length; i += 1) words[i] = next();
  for (let i = words.length * 4; i < size; i += 1) bytes[i] = next() & 0xff;
  return bytes;
}
