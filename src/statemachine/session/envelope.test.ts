import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import {
  ENVELOPE_FORMAT_VERSION,
  MAX_CLIENT_ID_BYTES,
  decodeCommandEnvelope,
  encodeCommandEnvelope,
} from "./envelope.js";

const payload = new Uint8Array([1, 2, 3]);

describe("command envelope", () => {
  it("round-trips with and without a session, filling ackedBelow in", () => {
    const bare = decodeCommandEnvelope(encodeCommandEnvelope({ proposedAtMs: 5, payload }));
    expect(bare).toEqual({ proposedAtMs: 5, payload });
    const withSession = decodeCommandEnvelope(
      encodeCommandEnvelope({
        proposedAtMs: 1_700_000_000_000,
        session: { clientId: "c-1", sequence: 7 },
        payload,
      }),
    );
    expect(withSession).toEqual({
      proposedAtMs: 1_700_000_000_000,
      session: { clientId: "c-1", sequence: 7, ackedBelow: 7 },
      payload,
    });
  });

  it("round-trips any valid envelope", () => {
    const session = fc.record({
      clientId: fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" }),
      sequence: fc.integer({ min: 1, max: 1000 }),
    });
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.option(session, { nil: undefined }),
        fc.uint8Array({ maxLength: 20 }),
        (proposedAtMs, s, body) => {
          const envelope =
            s === undefined
              ? { proposedAtMs, payload: body }
              : { proposedAtMs, session: { ...s, ackedBelow: 1 }, payload: body };
          const encoded = encodeCommandEnvelope(envelope);
          expect(decodeCommandEnvelope(encoded)).toEqual(envelope);
          // Sized exactly: the bytes are their buffer, with nothing over (no copy at finish,
          // and the kv store may share them: see KvValueMode).
          expect(encoded.byteOffset).toBe(0);
          expect(encoded.buffer.byteLength).toBe(encoded.length);
        },
      ),
    );
  });

  it("starts with its format version", () => {
    expect(encodeCommandEnvelope({ proposedAtMs: 0, payload })[0]).toBe(ENVELOPE_FORMAT_VERSION);
  });

  it("refuses invalid header fields when encoding", () => {
    const encode = (session: { clientId: string; sequence: number; ackedBelow?: number }) =>
      encodeCommandEnvelope({ proposedAtMs: 0, session, payload });
    expect(() => encodeCommandEnvelope({ proposedAtMs: -1, payload })).toThrow(
      InvalidArgumentError,
    );
    expect(() => encodeCommandEnvelope({ proposedAtMs: 1.5, payload })).toThrow(
      InvalidArgumentError,
    );
    expect(() => encode({ clientId: "", sequence: 1 })).toThrow(InvalidArgumentError);
    expect(() => encode({ clientId: "\ud800", sequence: 1 })).toThrow(InvalidArgumentError);
    expect(() => encode({ clientId: "x".repeat(MAX_CLIENT_ID_BYTES + 1), sequence: 1 })).toThrow(
      TooLargeError,
    );
    expect(() => encode({ clientId: "c", sequence: 0 })).toThrow(InvalidArgumentError);
    expect(() => encode({ clientId: "c", sequence: 2, ackedBelow: 3 })).toThrow(/ackedBelow/);
    expect(() => encode({ clientId: "c", sequence: 2, ackedBelow: 0 })).toThrow(/ackedBelow/);
    expect(() => encode({ clientId: "x".repeat(MAX_CLIENT_ID_BYTES), sequence: 1 })).not.toThrow();
  });

  it("refuses malformed bytes when decoding", () => {
    const good = encodeCommandEnvelope({
      proposedAtMs: 3,
      session: { clientId: "c", sequence: 2, ackedBelow: 1 },
      payload: new Uint8Array(0),
    });
    for (let length = 0; length < good.length; length++) {
      expect(() => decodeCommandEnvelope(good.subarray(0, length))).toThrow(InvalidArgumentError);
    }
    const badVersion = good.slice();
    badVersion[0] = 2;
    expect(() => decodeCommandEnvelope(badVersion)).toThrow(/unknown format version 2/);
    const badFlags = good.slice();
    badFlags[1] = 0b11;
    expect(() => decodeCommandEnvelope(badFlags)).toThrow(/unknown flags/);
    const ackedAboveSequence = encodeCommandEnvelope({
      proposedAtMs: 3,
      session: { clientId: "c", sequence: 2, ackedBelow: 2 },
      payload: new Uint8Array(0),
    });
    ackedAboveSequence[ackedAboveSequence.length - 1] = 3;
    expect(() => decodeCommandEnvelope(ackedAboveSequence)).toThrow(/ackedBelow/);
  });
});
