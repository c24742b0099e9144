/**
 * Where the CLI finds its ACL token, first found wins:
 * 1. `--token <secret>`;
 * 2. `BLIXARD_TOKEN`;
 * 3. `--token-file <file>` (or `BLIXARD_TOKEN_FILE`): the file's first line;
 * 4. `.blixard/dev/management.token` under the current directory, which `blixard dev` writes
 *    (0600) once it has bootstrapped the ACL system.
 * Without any, requests go without a credential and protected routes answer 401.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "../../common/errors.js";

/** The file `blixard dev` writes the management token to, inside its data directory. */
export const DEV_TOKEN_FILE = "management.token";
/** The dev cluster's default data directory (see `blixard dev --data-dir`). */
export const DEV_DATA_DIR = ".blixard/dev";

/** The token options of a client command. */
export interface TokenOptions {
  readonly token?: string;
  readonly tokenFile?: string;
}

/**
 * The token to send, or undefined (lookup order in the module comment).
 * @throws InvalidArgumentError if `--token-file` cannot be read or is empty.
 */
export function resolveToken(
  options: TokenOptions,
  cwd: string = process.cwd(),
): string | undefined {
  if (options.token !== undefined && options.token !== "") return options.token;
  const fromEnv = process.env["BLIXARD_TOKEN"];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return fromEnv.trim();
  const file = options.tokenFile ?? process.env["BLIXARD_TOKEN_FILE"];
  if (file !== undefined && file !== "") {
    const token = readFirstLine(file);
    if (token === undefined) {
      throw new InvalidArgumentError(`cannot read a token from ${file}; check the path`);
    }
    return token;
  }
  return readFirstLine(join(cwd, DEV_DATA_DIR, DEV_TOKEN_FILE));
}

function readFirstLine(path: string): string | undefined {
  try {
    const line = readFileSync(path, "utf8").split("\n")[0]?.trim();
    return line === undefined || line === "" ? undefined : line;
  } catch {
    return undefined;
  }
}
