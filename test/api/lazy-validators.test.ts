import { AjvCompiler } from "@fastify/ajv-compiler";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { lazyAjvValidators, lazyValidators } from "../../src/api/lazy-validators.js";

const bodySchema = {
  type: "object",
  properties: { value: { type: "string" } },
  required: ["value"],
  additionalProperties: false,
};

describe("lazyValidators", () => {
  it("compiles a route's validator on its first request, once, and validates as Ajv does", async () => {
    const compiled: string[] = [];
    const app = Fastify({
      ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
      schemaController: {
        compilersFactory: {
          // Counts real compiles of the default Ajv compiler underneath.
          buildValidator: lazyValidators((external, options) => {
            const real = (
              AjvCompiler() as unknown as Parameters<typeof lazyValidators>[0] & object
            )(external, options);
            return (route) => {
              compiled.push(`${route.method} ${route.url} ${route.httpPart ?? ""}`);
              return real(route);
            };
          }) as never,
        },
      },
    });
    app.put("/a", { schema: { body: bodySchema } }, async () => ({ ok: true }));
    app.put("/b", { schema: { body: bodySchema } }, async () => ({ ok: true }));
    await app.ready();
    expect(compiled).toEqual([]);

    const good = await app.inject({ method: "PUT", url: "/a", payload: { value: "x" } });
    expect(good.statusCode).toBe(200);
    const missing = await app.inject({ method: "PUT", url: "/a", payload: {} });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().message).toContain("must have required property 'value'");
    const extra = await app.inject({ method: "PUT", url: "/a", payload: { value: "x", y: 1 } });
    expect(extra.statusCode).toBe(400);
    const wrongType = await app.inject({ method: "PUT", url: "/a", payload: { value: 5 } });
    expect(wrongType.statusCode).toBe(400);
    expect(compiled).toEqual(["PUT /a body"]);
    await app.close();
  });
});

describe("lazyValidators' compiler", () => {
  it("is built on the first request that validates, once for every route", async () => {
    let builds = 0;
    const app = Fastify({
      schemaController: {
        compilersFactory: {
          buildValidator: lazyValidators((external, options) => {
            builds++;
            return (AjvCompiler() as unknown as Parameters<typeof lazyValidators>[0] & object)(
              external,
              options,
            );
          }) as never,
        },
      },
    });
    app.put("/a", { schema: { body: bodySchema } }, async () => ({ ok: true }));
    app.put("/b", { schema: { body: bodySchema } }, async () => ({ ok: true }));
    await app.ready();
    expect(builds).toBe(0);
    const answers = await Promise.all(
      ["/a", "/b", "/a"].map((url) => app.inject({ method: "PUT", url, payload: {} })),
    );
    expect(answers.map((a) => a.statusCode)).toEqual([400, 400, 400]);
    expect(builds).toBe(1);
    await app.close();
  });

  it("defaults to Fastify's own Ajv compiler, as strict as the server's options say", async () => {
    const app = Fastify({
      ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
      schemaController: { compilersFactory: { buildValidator: lazyAjvValidators() } },
    });
    app.put("/a", { schema: { body: bodySchema } }, async (request) => request.body);
    await app.ready();
    const good = await app.inject({ method: "PUT", url: "/a", payload: { value: "x" } });
    expect(good.json()).toEqual({ value: "x" });
    for (const payload of [{}, { value: "x", y: 1 }, { value: 5 }]) {
      const refused = await app.inject({ method: "PUT", url: "/a", payload });
      expect(refused.statusCode, JSON.stringify(payload)).toBe(400);
    }
    await app.close();
  });
});
