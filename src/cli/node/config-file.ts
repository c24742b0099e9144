/**
 * `node start --config FILE`: settings from a JSON file, under flags and `BLIXARD_*` variables.
 *
 * The file is one JSON object whose keys are the flags' names in camelCase (`dataDir`,
 * `peerListen`, `initialMembers`, `logLevel`, ...) and whose values are what the flag would be
 * given: a string or a number, or an array of strings for a comma-separated list. Each value goes
 * through the flag's own parser, so it is checked exactly as on the command line. Precedence:
 * a flag, then its environment variable, then the file, then the default.
 */
import { readFileSync } from "node:fs";
import type { Command, Option } from "commander";
import { InvalidArgumentError } from "../../common/errors.js";

/**
 * Sets every option of `command` that the file names and that neither a flag nor an
 * environment variable set.
 * @throws InvalidArgumentError if the file cannot be read, is not a JSON object, names an unknown
 *   setting, or holds a value the flag's parser refuses.
 */
export function applyConfigFile(command: Command, path: string): void {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new InvalidArgumentError(
      `cannot read the config file ${path}: ${(error as Error).message}`,
    );
  }
  let settings: unknown;
  try {
    settings = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`${path} is not JSON: ${(error as Error).message}`);
  }
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) {
    throw new InvalidArgumentError(`${path} must hold one JSON object of settings`);
  }
  const options = new Map(
    command.options
      .filter((o) => o.attributeName() !== "config" && !o.hidden)
      .map((o): [string, Option] => [o.attributeName(), o]),
  );
  for (const [key, value] of Object.entries(settings)) {
    const option = options.get(key);
    if (option === undefined) {
      throw new InvalidArgumentError(
        `${path}: unknown setting "${key}" (known: ${[...options.keys()].join(", ")})`,
      );
    }
    const source = command.getOptionValueSource(key);
    if (source === "cli" || source === "env") continue;
    const raw = settingText(value);
    if (raw === undefined) {
      throw new InvalidArgumentError(
        `${path}: "${key}" must be a string, a number, a boolean or an array of strings`,
      );
    }
    let parsed: unknown = raw;
    try {
      if (option.parseArg !== undefined) parsed = option.parseArg(raw, undefined);
    } catch (error) {
      throw new InvalidArgumentError(`${path}: "${key}": ${(error as Error).message}`);
    }
    command.setOptionValueWithSource(key, parsed, "config");
  }
}

function settingText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join(",");
  return undefined;
}
