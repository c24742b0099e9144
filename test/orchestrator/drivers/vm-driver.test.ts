import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../../src/common/errors.js";
import { checkVmName } from "../../../src/orchestrator/drivers/vm-driver.js";

describe("checkVmName", () => {
  it("accepts every name the model accepts ([a-z0-9-]{1,63})", () => {
    const modelName = fc.stringMatching(/^[a-z0-9-]{1,63}$/);
    fc.assert(fc.property(modelName, (name) => checkVmName(name)));
    expect(() => checkVmName("-leading-hyphen")).not.toThrow();
  });

  it("refuses anything that could escape the driver's directories or hide a file", () => {
    for (const name of [".", "..", ".x", "a/b", "/abs", "a\0b", "", "x".repeat(64)]) {
      expect(() => checkVmName(name)).toThrow(InvalidArgumentError);
    }
  });
});
