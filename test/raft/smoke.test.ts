import { describe, expect, it } from "vitest";
import { TestCluster } from "./cluster.js";

describe("smoke: a 3-node cluster", () => {
  it("elects a leader and replicates proposals to every node", () => {
    const c = new TestCluster({ voters: [1, 2, 3] });
    c.elect(1);
    expect(c.leader()).toBe(1);
    c.propose(1, "a");
    c.propose(2, "b");
    for (const id of [1, 2, 3]) expect(c.appliedCommands(id)).toEqual(["a", "b"]);
  });
});
