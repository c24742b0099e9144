import { describe } from "vitest";
import { batchTest } from "./batch.js";

describe("deterministic simulation, batch 1", () => batchTest(1));
