import { describe, expect, it } from "vitest";
import {
  encodeForwardedProposal,
  FORWARDED_HEADER_BYTES,
  forwardedBy,
  forwardedCommand,
  forwardedOrigin,
  forwardedSequence,
  isForwardedProposal,
} from "./forwarded-proposal.js";

describe("forwarded proposal envelope", () => {
  it("round-trips origin, incarnation, sequence and the command, for ids up to 2^53", () => {
    const command = new Uint8Array([0x01, 2, 3]);
    for (const origin of [1, 7, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER]) {
      const data = encodeForwardedProposal(origin, 0x7fff_fffe, 0xffff_ffff, command);
      expect(data.byteLength).toBe(FORWARDED_HEADER_BYTES + command.byteLength);
      expect(isForwardedProposal(data)).toBe(true);
      expect(forwardedOrigin(data)).toBe(origin);
      expect(forwardedSequence(data)).toBe(0xffff_ffff);
      expect(forwardedBy(data, origin, 0x7fff_fffe)).toBe(true);
      expect(forwardedBy(data, origin, 0x7fff_fffd)).toBe(false);
      expect(forwardedBy(data, origin + 1, 0x7fff_fffe)).toBe(false);
      expect([...forwardedCommand(data)]).toEqual([0x01, 2, 3]);
    }
  });

  it("reads the command as a view of the entry, at any offset of its buffer", () => {
    const data = encodeForwardedProposal(3, 9, 42, new Uint8Array([0x10, 0x20]));
    const shifted = new Uint8Array(data.byteLength + 5);
    shifted.set(data, 5);
    const entry = shifted.subarray(5);
    expect(forwardedOrigin(entry)).toBe(3);
    expect(forwardedSequence(entry)).toBe(42);
    expect(forwardedCommand(entry).buffer).toBe(shifted.buffer);
  });

  it("never takes a state machine command (namespace bytes 0x01, 0x10, 0x20) or a short entry for one", () => {
    for (const first of [0x00, 0x01, 0x10, 0x20, 0xff]) {
      expect(isForwardedProposal(new Uint8Array(32).fill(first))).toBe(false);
    }
    expect(isForwardedProposal(new Uint8Array([0xf0, 1, 2]))).toBe(false);
  });
});
