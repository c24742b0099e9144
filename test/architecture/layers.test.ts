import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkLayers, importSpecifiers, readSources } from "./layers.js";

const srcDir = fileURLToPath(new URL("../../src", import.meta.url));

describe("layering (ARCHITECTURE.md: lower layers never import higher ones)", () => {
  it("holds for every file under src/", () => {
    expect(checkLayers(readSources(srcDir))).toEqual([]);
  });

  it("rejects an import of the runtime from the consensus core", () => {
    const sources = new Map([["raft/raft.ts", 'import { RaftNode } from "../node/runtime.js";\n']]);
    expect(checkLayers(sources)).toEqual([
      {
        file: "raft/raft.ts",
        specifier: "../node/runtime.js",
        fromLayer: "raft",
        toPath: "node/runtime.js",
      },
    ]);
  });

  it("rejects the platform from the runtime and the simulator", () => {
    const sources = new Map([
      ["node/runtime.ts", 'import { randomSeed } from "../platform/seed.js";'],
      ["sim/cluster.ts", 'export { randomSeed } from "../platform/index.js";'],
    ]);
    expect(checkLayers(sources).map((v) => v.file)).toEqual(["node/runtime.ts", "sim/cluster.ts"]);
  });

  it("lets the client use the API's schema but not its server", () => {
    const sources = new Map([
      [
        "client/client.ts",
        'import type { KvPut } from "../api/schema/kv.js";\nimport { serve } from "../api/server.js";',
      ],
    ]);
    expect(checkLayers(sources).map((v) => v.specifier)).toEqual(["../api/server.js"]);
  });

  it("rejects a layer missing from the table and imports that leave src/", () => {
    const sources = new Map([
      ["newlayer/x.ts", 'import { a } from "./a.js";'],
      ["raft/y.ts", 'import { b } from "../../test/b.js";'],
    ]);
    expect(checkLayers(sources).map((v) => v.file)).toEqual(["newlayer/x.ts", "raft/y.ts"]);
  });

  it("finds static, re-export, side-effect and dynamic imports", () => {
    const source = [
      'import { a } from "./a.js";',
      'import type { B } from "./b.js";',
      'export * from "./c.js";',
      'import "./d.js";',
      'const e = await import("./e.js");',
      "import {\n  f,\n  g,\n} from './f.js';",
    ].join("\n");
    expect(importSpecifiers(source)).toEqual([
      "./a.js",
      "./b.js",
      "./c.js",
      "./d.js",
      "./e.js",
      "./f.js",
    ]);
  });
});
