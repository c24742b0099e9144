import { describe } from "vitest";
import { orchestratorBatchTest } from "./orchestrator-batch.js";

describe("orchestrator simulation, batch 1", () => orchestratorBatchTest(1));
