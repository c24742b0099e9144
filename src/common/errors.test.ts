import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  NotLeaderError,
  StorageCorruptError,
  TimeoutError,
  isBlixardError,
} from "./errors.js";

describe("typed errors", () => {
  it("carry a stable code and the subclass name", () => {
    const error = new TimeoutError("proposal not applied within 5000 ms");
    expect(error.code).toBe("TIMEOUT");
    expect(error.name).toBe("TimeoutError");
    expect(isBlixardError(error)).toBe(true);
    expect(isBlixardError(new Error("x"))).toBe(false);
    expect(error.toJSON()).toEqual({
      code: "TIMEOUT",
      message: "proposal not applied within 5000 ms",
    });
  });

  it("say where the leader is, when known", () => {
    expect(new NotLeaderError({ id: 2, address: "http://127.0.0.1:7002" }).message).toBe(
      "not the leader; try node 2 at http://127.0.0.1:7002",
    );
    expect(new NotLeaderError().message).toMatch(/no leader is known/);
  });

  it("name the file and offset of corruption", () => {
    const error = new StorageCorruptError("wal/0000000001.seg", 4096, "CRC mismatch");
    expect(error.message).toContain("wal/0000000001.seg at offset 4096");
    expect(error.offset).toBe(4096);
  });

  it("map each code to a distinct exit code", () => {
    const exitCodes = Object.values(ERROR_CODES).map((c) => c.exitCode);
    expect(new Set(exitCodes).size).toBe(exitCodes.length);
  });
});
