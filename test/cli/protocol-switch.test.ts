/**
 * The test-only previous-release switch and the downgrade check of `node start`
 * (src/cli/node/protocol-switch.ts).
 */
import { describe, expect, it } from "vitest";
import {
  checkNotDowngraded,
  nodeProtocolVersion,
  TEST_PROTOCOL_ENV,
} from "../../src/cli/node/protocol-switch.js";
import { PROTOCOL_VERSION } from "../../src/transport/codec.js";

describe("the protocol switch", () => {
  it("is this release's protocol unless set, and only a version this release speaks", () => {
    expect(nodeProtocolVersion(undefined)).toBe(PROTOCOL_VERSION);
    expect(nodeProtocolVersion("")).toBe(PROTOCOL_VERSION);
    expect(nodeProtocolVersion("1")).toBe(1);
    for (const bad of ["0", String(PROTOCOL_VERSION + 1), "1.5", "one", "-1"]) {
      expect(() => nodeProtocolVersion(bad)).toThrow(
        expect.objectContaining({
          code: "INVALID_ARGUMENT",
          message: expect.stringContaining(TEST_PROTOCOL_ENV) as unknown,
        }),
      );
    }
  });

  it("a node whose data saw a newer cluster protocol refuses to start, saying what to run", () => {
    expect(() => checkNotDowngraded(1, 1)).not.toThrow();
    expect(() => checkNotDowngraded(2, 2)).not.toThrow();
    expect(() => checkNotDowngraded(2, 1)).toThrow(
      expect.objectContaining({
        code: "CONFLICT",
        message: expect.stringContaining("start it with a release that speaks 2") as unknown,
      }),
    );
  });
});
