/** What the orchestrator routes read from a validated request: call options and path values. */
import type { RequestContext } from "../route.js";
import type { Consistency } from "../schema/common.js";
import type { ReadOptions, WriteOptions } from "../service.js";
import { parsePositiveInteger } from "../convert.js";

/** The read options of a request: its deadline and signal, and `?consistency=`. */
export function readOptions(context: RequestContext): ReadOptions {
  const consistency = context.query["consistency"] as Consistency | undefined;
  return { ...context.call, ...(consistency === undefined ? {} : { consistency }) };
}

/** The write options of a request: its deadline and signal, and its client session. */
export function writeOptions(context: RequestContext): WriteOptions {
  return {
    ...context.call,
    ...(context.session === undefined ? {} : { session: context.session }),
  };
}

/** A path parameter the schema has validated (so present). */
export function param(context: RequestContext, name: string): string {
  return context.params[name] ?? "";
}

/** A node id path parameter. @throws InvalidArgumentError if it is not a positive integer. */
export function nodeIdParam(context: RequestContext): number {
  return parsePositiveInteger(context.params["id"], "node id");
}
