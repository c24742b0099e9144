/**
 * The options every client command shares (`--endpoints`, `--json`, `--timeout`) and the
 * client they build. Endpoints come from the flag, else `BLIXARD_ENDPOINTS`, else the dev
 * cluster's first node.
 */
import type { Command } from "commander";
import { BlixardClient } from "../../client/index.js";
import { parseEndpoints, parsePositiveInt } from "../options.js";
import { resolveToken } from "./token-lookup.js";

/** The default endpoint: node 1 of `blixard dev`. */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:8001";

/** Parsed shared options. */
export interface ClientOptions {
  readonly endpoints?: string[];
  readonly json?: boolean;
  readonly timeout?: number;
  readonly token?: string;
  readonly tokenFile?: string;
}

/** Adds the shared client options to `command`. */
export function withClientOptions(command: Command): Command {
  return command
    .option(
      "--endpoints <urls>",
      `API URLs, comma-separated (env BLIXARD_ENDPOINTS; default ${DEFAULT_ENDPOINT})`,
      parseEndpoints,
    )
    .option("--json", "print JSON for scripts")
    .option(
      "--timeout <ms>",
      "deadline of the call, retries included (default 10000)",
      parsePositiveInt,
    )
    .option("--token <secret>", "ACL token (env BLIXARD_TOKEN)")
    .option(
      "--token-file <file>",
      "read the ACL token from a file (env BLIXARD_TOKEN_FILE; default .blixard/dev/management.token if present)",
    );
}

/** The client the options describe. @throws commander's InvalidArgumentError on a bad env value. */
export function clientFrom(options: ClientOptions): BlixardClient {
  const fromEnv = process.env["BLIXARD_ENDPOINTS"];
  const endpoints =
    options.endpoints ??
    (fromEnv !== undefined && fromEnv.trim() !== "" ? parseEndpoints(fromEnv) : [DEFAULT_ENDPOINT]);
  const token = resolveToken(options);
  return new BlixardClient({
    endpoints,
    ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }),
    ...(token === undefined ? {} : { token }),
  });
}

/** Writes `value` as one line of JSON on stdout, bytes as base64. */
export function printJson(value: unknown): void {
  process.stdout.write(
    `${JSON.stringify(value, (_key, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v,
    )}\n`,
  );
}
