import { describe } from "vitest";
import { batchTest } from "./batch.js";

describe("deterministic simulation, batch 3", () => batchTest(3));
