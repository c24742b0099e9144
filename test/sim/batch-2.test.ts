import { describe } from "vitest";
import { batchTest } from "./batch.js";

describe("deterministic simulation, batch 2", () => batchTest(2));
