/**
 * Request validators compiled on a route's first request instead of at start-up. Fastify
 * compiles every route's JSON schemas with Ajv when the server starts: with ~150 routes that was
 * half a second of a restart on this machine kind, spent before the node could answer anything,
 * mostly for routes a given node never serves. Each validator now costs its compile once, on the
 * first request that needs it (a few milliseconds), and validates exactly as before.
 *
 * Ajv itself is loaded and built on the first compile too: loading @fastify/ajv-compiler (three
 * hundred modules with Ajv and its formats) and building its Ajv cost about 80 ms, which a node
 * spent before it listened and before its Raft node started. The first request pays it instead,
 * once the node runs.
 */
import { createRequire } from "node:module";
import type { FastifyServerOptions } from "fastify";

/** What Fastify hands a validator compiler for one part (body, params…) of one route. */
interface RouteSchema {
  readonly schema: unknown;
  readonly method: string;
  readonly url: string;
  readonly httpPart?: string;
}

/** A compiled validator as Fastify calls it: `false` and its `errors` on invalid input. */
type Validate = ((data: unknown) => unknown) & { errors?: unknown };

/** Fastify's `schemaController.compilersFactory.buildValidator` shape. */
type BuildValidator = (
  externalSchemas: Record<string, unknown>,
  options?: unknown,
) => (route: RouteSchema) => Validate;

/** The validator factory Fastify's options take. */
type FastifyValidatorFactory = NonNullable<
  NonNullable<
    NonNullable<FastifyServerOptions["schemaController"]>["compilersFactory"]
  >["buildValidator"]
>;

/**
 * Fastify's and Ajv's published types describe the compile function as Ajv's `compile(schema)`;
 * Fastify really calls it with a {@link RouteSchema}. Both are functions, which is all that can
 * be checked at run time.
 */
function isFunction<T>(value: unknown): value is T {
  return typeof value === "function";
}

/** Fastify's own Ajv compiler factory, seen as Fastify calls it; loaded when first called. */
function defaultBuild(): BuildValidator {
  return (externalSchemas, options) => {
    const selector: unknown = createRequire(import.meta.url)("@fastify/ajv-compiler");
    if (!isFunction<() => unknown>(selector)) {
      throw new TypeError("@fastify/ajv-compiler changed shape");
    }
    const build: unknown = selector();
    if (!isFunction<BuildValidator>(build))
      throw new TypeError("@fastify/ajv-compiler changed shape");
    return build(externalSchemas, options);
  };
}

/** {@link lazyValidators} over Fastify's own Ajv compiler, typed for Fastify's options. */
export function lazyAjvValidators(): FastifyValidatorFactory {
  const factory: unknown = lazyValidators();
  if (!isFunction<FastifyValidatorFactory>(factory)) throw new TypeError("not a function");
  return factory;
}

/**
 * Wraps a validator factory so that each route's validator is compiled when first called.
 * Defaults to Fastify's own Ajv compiler, with the server's `ajv` options.
 */
export function lazyValidators(build: BuildValidator = defaultBuild()): BuildValidator {
  return (externalSchemas, options) => {
    // One compiler for the server, as Fastify's own: built when a route first validates.
    let compiler: ((route: RouteSchema) => Validate) | undefined;
    return (route) => {
      let compiled: Validate | undefined;
      const validate: Validate = (data) => {
        compiler ??= build(externalSchemas, options);
        compiled ??= compiler(route);
        const result = compiled(data);
        validate.errors = compiled.errors;
        return result;
      };
      return validate;
    };
  };
}
