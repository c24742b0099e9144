import { describe } from "vitest";
import { batchTest } from "./batch.js";

describe("deterministic simulation, batch 4", () => batchTest(4));
