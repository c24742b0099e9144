import { randomInt } from "node:crypto";

/**
 * A fresh 32-bit seed from the operating system's entropy. Only composition roots call this; the
 * seed is then logged and passed to deterministic code as a `SeededRandom`, so any run can be
 * replayed from the printed seed.
 */
export function randomSeed(): number {
  return randomInt(0, 0x1_0000_0000);
}
