import { AjvCompiler } from "@fastify/ajv-compiler";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { lazyValidators } from "../../src/api/lazy-validators.js";

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
