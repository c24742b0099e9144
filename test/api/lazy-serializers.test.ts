import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { lazySerializers } from "../../src/api/lazy-serializers.js";

describe("lazySerializers", () => {
  it("loads no serializer compiler for a server whose routes have no response schema", async () => {
    let loads = 0;
    const app = Fastify({
      schemaController: {
        compilersFactory: {
          buildSerializer: lazySerializers(() => {
            loads++;
            throw new Error("must not be loaded");
          }),
        },
      },
    });
    app.get("/a", async () => ({ ok: true, extra: 1 }));
    await app.ready();
    const answer = await app.inject({ method: "GET", url: "/a" });
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ ok: true, extra: 1 });
    expect(loads).toBe(0);
    await app.close();
  });

  it("serializes a route with a response schema with Fastify's own compiler, loaded then", async () => {
    const lazy = Fastify({
      schemaController: { compilersFactory: { buildSerializer: lazySerializers() } },
    });
    const eager = Fastify();
    const schema = {
      response: {
        200: {
          type: "object",
          properties: { ok: { type: "boolean" }, n: { type: "integer" } },
        },
      },
    };
    for (const app of [lazy, eager]) {
      // fast-json-stringify drops what the schema does not name and coerces what it does.
      app.get("/a", { schema }, async () => ({ ok: true, n: "7", hidden: "x" }));
    }
    const answers = await Promise.all(
      [lazy, eager].map(async (app) => (await app.inject({ method: "GET", url: "/a" })).body),
    );
    expect(answers[0]).toBe('{"ok":true,"n":7}');
    expect(answers[0]).toBe(answers[1]);
    await Promise.all([lazy.close(), eager.close()]);
  });
});
