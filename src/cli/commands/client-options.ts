/**
 * The options every client command shares (`--endpoints`, `--json`, `--timeout`, and the
 * credentials `--ca`, `--cert`, `--key`, `--token`, `--token-file`) and the client they build.
 *
 * Endpoints come from the flag, else `BLIXARD_ENDPOINTS`, else the dev cluster's first node.
 * The CA comes from `--ca`, else `BLIXARD_CACERT`, else `./.blixard/dev/tls/ca.pem` when that
 * file exists (the CA `blixard dev` creates, so the quick start needs no flag), else the
 * system's CAs. The client certificate from `--cert`/`--key` or `BLIXARD_CERT`/`BLIXARD_KEY`;
 * the token from `--token`, `--token-file`, or `BLIXARD_TOKEN`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import { BlixardClient, DEFAULT_TIMEOUT_MS } from "../../client/index.js";
import { InvalidArgumentError } from "../../common/errors.js";
import { readPemFile } from "../../security/files.js";
import { parseEndpoints, parsePositiveInt } from "../options.js";
import { defaultShown } from "../option-defaults.js";
import { DEV_DATA_DIR, DEV_TOKEN_FILE, resolveToken } from "./token-lookup.js";

/** The default endpoint: node 1 of `blixard dev`. */
export const DEFAULT_ENDPOINT = "https://127.0.0.1:8001";
/** Where `blixard dev` keeps its CA, relative to the working directory. */
export const DEV_CA_PATH = join(".blixard", "dev", "tls", "ca.pem");

/** Parsed shared options. */
export interface ClientOptions {
  readonly endpoints?: string[];
  readonly json?: boolean;
  readonly timeout?: number;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
  readonly tokenFile?: string;
}

/**
 * Adds the shared client options to `command`; `timeoutDefault` is what `--timeout` defaults to
 * for this command when that is not the client's own default.
 */
export function withClientOptions(
  command: Command,
  timeoutDefault: string | number = DEFAULT_TIMEOUT_MS,
): Command {
  return command
    .addOption(
      defaultShown(
        new Option(
          "--endpoints <urls>",
          "API URLs, comma-separated (env BLIXARD_ENDPOINTS)",
        ).argParser(parseEndpoints),
        DEFAULT_ENDPOINT,
      ),
    )
    .option("--json", "print JSON for scripts")
    .addOption(
      defaultShown(
        new Option("--timeout <ms>", "deadline of the call, retries included").argParser(
          parsePositiveInt,
        ),
        timeoutDefault,
      ),
    )
    .addOption(
      defaultShown(
        new Option("--ca <file>", "the cluster's CA certificate (env BLIXARD_CACERT)"),
        `${DEV_CA_PATH} if present`,
      ),
    )
    .option("--cert <file>", "a client certificate to present (env BLIXARD_CERT)")
    .option("--key <file>", "the client certificate's key (env BLIXARD_KEY)")
    .option("--token <secret>", "an ACL token (env BLIXARD_TOKEN)")
    .addOption(
      defaultShown(
        new Option(
          "--token-file <file>",
          "read the ACL token from a file (env BLIXARD_TOKEN_FILE)",
        ),
        `${DEV_DATA_DIR}/${DEV_TOKEN_FILE} if present`,
      ),
    );
}

function fromEnv(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/**
 * The credentials the options and environment give (see the module comment).
 * @throws TlsMaterialError if a named file cannot be read; InvalidArgumentError on a lone
 *   --cert or --key.
 */
export function clientCredentials(options: ClientOptions): {
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
} {
  let caPath = options.ca ?? fromEnv("BLIXARD_CACERT");
  if (caPath === undefined && existsSync(DEV_CA_PATH)) caPath = DEV_CA_PATH;
  const certPath = options.cert ?? fromEnv("BLIXARD_CERT");
  const keyPath = options.key ?? fromEnv("BLIXARD_KEY");
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new InvalidArgumentError(
      "a client certificate needs both --cert and --key (or BLIXARD_CERT and BLIXARD_KEY)",
    );
  }
  const token = resolveToken(options);
  return {
    ...(caPath === undefined ? {} : { ca: readPemFile(caPath, "the CA certificate") }),
    ...(certPath === undefined ? {} : { cert: readPemFile(certPath, "the client certificate") }),
    ...(keyPath === undefined ? {} : { key: readPemFile(keyPath, "the client key") }),
    ...(token === undefined ? {} : { token }),
  };
}

/** The client the options describe. @throws commander's InvalidArgumentError on a bad env value. */
export function clientFrom(
  options: ClientOptions,
  tuning: { readonly retries?: number } = {},
): BlixardClient {
  const fromEnvEndpoints = process.env["BLIXARD_ENDPOINTS"];
  const endpoints =
    options.endpoints ??
    (fromEnvEndpoints !== undefined && fromEnvEndpoints.trim() !== ""
      ? parseEndpoints(fromEnvEndpoints)
      : [DEFAULT_ENDPOINT]);
  return new BlixardClient({
    endpoints,
    ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }),
    ...(tuning.retries === undefined ? {} : { retries: tuning.retries }),
    ...clientCredentials(options),
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
