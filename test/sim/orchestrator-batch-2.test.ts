import { describe } from "vitest";
import { orchestratorBatchTest } from "./orchestrator-batch.js";

describe("orchestrator simulation, batch 2", () => orchestratorBatchTest(2));
