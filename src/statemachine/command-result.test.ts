import { describe, expect, it } from "vitest";
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  TooLargeError,
  type ErrorCode,
} from "../common/index.js";
import {
  commandErrorToException,
  errorResult,
  okResult,
  validationErrorResult,
} from "./command-result.js";

describe("command results", () => {
  it("carry a value or a typed error", () => {
    expect(okResult(3)).toEqual({ ok: true, value: 3 });
    expect(errorResult("CONFLICT", "gone", "SESSION_EXPIRED")).toEqual({
      ok: false,
      error: { code: "CONFLICT", message: "gone", reason: "SESSION_EXPIRED" },
    });
    expect(errorResult("TOO_LARGE", "big")).toEqual({
      ok: false,
      error: { code: "TOO_LARGE", message: "big" },
    });
  });

  it("turn validation errors into results and rethrow anything else", () => {
    expect(validationErrorResult(new TooLargeError("key too big"))).toEqual({
      ok: false,
      error: { code: "TOO_LARGE", message: "key too big" },
    });
    expect(validationErrorResult(new InvalidArgumentError("bad"))).toMatchObject({
      error: { code: "INVALID_ARGUMENT" },
    });
    const bug = new InternalError("invariant");
    expect(() => validationErrorResult(bug)).toThrow(bug);
    expect(() => validationErrorResult(new RangeError("x"))).toThrow(RangeError);
  });

  it("map each error code to its exception class", () => {
    const cases: [ErrorCode, new (...args: never[]) => Error][] = [
      ["CONFLICT", ConflictError],
      ["OVERLOADED", OverloadedError],
      ["TOO_LARGE", TooLargeError],
      ["INVALID_ARGUMENT", InvalidArgumentError],
      ["NOT_LEADER", NotLeaderError],
      ["STORAGE_CORRUPT", InternalError],
      ["INTERNAL", InternalError],
    ];
    for (const [code, errorClass] of cases) {
      expect(commandErrorToException({ code, message: "m" })).toBeInstanceOf(errorClass);
    }
    const withReason = commandErrorToException({ code: "CONFLICT", message: "m", reason: "R" });
    expect(withReason.message).toBe("R: m");
    expect(withReason.code).toBe("CONFLICT");
  });
});
