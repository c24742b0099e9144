import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../common/errors.js";
import type { ConfChange, ConfChangeSingle, ConfChangeTransition } from "../types.js";
import { ConfChangeTransition as Transition, ConfChangeType } from "../types.js";
import { confChangeEntersJoint, confChangeLeavesJoint } from "./transition.js";

const addOne: ConfChangeSingle = { type: ConfChangeType.AddNode, nodeId: 1 };
const addTwo: ConfChangeSingle = { type: ConfChangeType.AddNode, nodeId: 2 };

function cc(
  transition: ConfChangeTransition,
  changes: ConfChangeSingle[],
  context: Uint8Array = new Uint8Array(0),
): ConfChange {
  return { transition, changes, context };
}

describe("confChangeEntersJoint", () => {
  it("Auto with at most one change is a simple change", () => {
    expect(confChangeEntersJoint(cc(Transition.Auto, [addOne]))).toEqual({
      entersJoint: false,
      autoLeave: false,
    });
    expect(confChangeEntersJoint(cc(Transition.Auto, []))).toEqual({
      entersJoint: false,
      autoLeave: false,
    });
  });

  it("Auto with several changes enters joint and leaves automatically", () => {
    expect(confChangeEntersJoint(cc(Transition.Auto, [addOne, addTwo]))).toEqual({
      entersJoint: true,
      autoLeave: true,
    });
  });

  it("Implicit always enters joint and leaves automatically", () => {
    expect(confChangeEntersJoint(cc(Transition.Implicit, [addOne]))).toEqual({
      entersJoint: true,
      autoLeave: true,
    });
  });

  it("Explicit always enters joint and waits for an explicit leave", () => {
    expect(confChangeEntersJoint(cc(Transition.Explicit, [addOne]))).toEqual({
      entersJoint: true,
      autoLeave: false,
    });
    expect(confChangeEntersJoint(cc(Transition.Explicit, [addOne, addTwo]))).toEqual({
      entersJoint: true,
      autoLeave: false,
    });
  });

  it("refuses an unknown transition", () => {
    expect(() => confChangeEntersJoint(cc(7 as ConfChangeTransition, [addOne]))).toThrow(
      InvalidArgumentError,
    );
  });
});

describe("confChangeLeavesJoint", () => {
  it("is the empty Auto change, whatever its context", () => {
    expect(confChangeLeavesJoint(cc(Transition.Auto, []))).toBe(true);
    expect(confChangeLeavesJoint(cc(Transition.Auto, [], new Uint8Array([1, 2])))).toBe(true);
  });

  it("is not a change with changes or another transition", () => {
    expect(confChangeLeavesJoint(cc(Transition.Auto, [addOne]))).toBe(false);
    expect(confChangeLeavesJoint(cc(Transition.Explicit, []))).toBe(false);
    expect(confChangeLeavesJoint(cc(Transition.Implicit, []))).toBe(false);
  });
});
