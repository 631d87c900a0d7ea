/**
 * A small, fast, seeded pseudo-random generator for reproducible tests (fuzzing, randomized
 * scenarios): xoshiro128** over four 32-bit words, seeded through splitmix32 so that any 32-bit
 * seed (0 included) gives a well-mixed state. One seed always gives the same sequence.
 *
 * @example
 * ```ts
 * const rng = new Rng(42);
 * rng.int(0, 10);      // an integer in [0, 10)
 * rng.pick(["a", "b"]); // one element
 * rng.bytes(16);        // 16 random bytes
 * ```
 *
 * @module
 */

/** splitmix32: one step of the seeding generator; returns the new state and an output word. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [next, (z ^ (z >>> 16)) >>> 0];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A seeded xoshiro128** generator. */
export class Rng {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;

  /** A generator whose whole sequence is determined by `seed` (taken modulo 2^32). */
  constructor(seed: number) {
    let st = seed >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(st);
      st = next;
      words.push(out);
    }
    [this.#s0, this.#s1, this.#s2, this.#s3] = words;
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** The next 32-bit unsigned word. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** An integer in [min, max) (max − min ≤ 2^32). */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A uniformly random 64-bit unsigned bigint. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let w = this.u32();
      for (let j = i; j < Math.min(n, i + 4); j++) {
        out[j] = w & 0xff;
        w >>>= 8;
      }
    }
    return out;
  }
}
