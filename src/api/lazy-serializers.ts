/**
 * Fastify's response serializer compiler, loaded when a route first needs it instead of when
 * the server is built. Fastify requires its default (fast-json-stringify, with two copies of
 * Ajv of its own) as it builds a server that names no serializer compiler: about 75 ms of every
 * node's start-up on this machine kind, for a compiler that only a route with a response schema
 * uses. The API gives Fastify no response schemas (they are documentation, in the OpenAPI
 * document), so a node never loads it; a route that gave one would get Fastify's own compiler,
 * loaded on that route's registration, and serialize exactly as before.
 */
import { createRequire } from "node:module";
import type { FastifyServerOptions } from "fastify";

/** The serializer factory Fastify's options take. */
type FastifySerializerFactory = NonNullable<
  NonNullable<
    NonNullable<FastifyServerOptions["schemaController"]>["compilersFactory"]
  >["buildSerializer"]
>;

/** The package Fastify takes its default serializer compiler from. */
const DEFAULT_SERIALIZER_COMPILER = "@fastify/fast-json-stringify-compiler";

/**
 * A serializer factory that loads and builds Fastify's default one when first called, with
 * the same external schemas and options, and delegates to it.
 * @param load loads the default factory's selector (tests count loads); default: Fastify's own,
 * resolved from Fastify's package as Fastify itself resolves it.
 */
export function lazySerializers(
  load: () => () => FastifySerializerFactory = loadFastifyDefault,
): FastifySerializerFactory {
  return (externalSchemas, options) => load()()(externalSchemas, options);
}

/** Fastify's `SerializerSelector`, required from where Fastify requires it. */
function loadFastifyDefault(): () => FastifySerializerFactory {
  const requireHere = createRequire(import.meta.url);
  const requireFromFastify = createRequire(requireHere.resolve("fastify"));
  const selector: unknown = requireFromFastify(DEFAULT_SERIALIZER_COMPILER);
  if (!isSelector(selector)) throw new TypeError(`${DEFAULT_SERIALIZER_COMPILER} changed shape`);
  return selector;
}

/** A required CommonJS module is untyped; that it is a function is all that can be checked. */
function isSelector(value: unknown): value is () => FastifySerializerFactory {
  return typeof value === "function";
}
