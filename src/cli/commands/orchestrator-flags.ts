/**
 * Flag parsers of the worker, task and VM commands. Each throws commander's
 * `InvalidArgumentError`, so a bad value is a usage error (exit 64) naming the flag. Repeatable
 * flags (`--env`, `--feature`) take the previous value and add to it.
 */
import { InvalidArgumentError, Option } from "commander";
import { ENV_NAME_PATTERN, FEATURE_PATTERN } from "../../api/schema/orchestrator.js";
import { MAX_RESOURCE_AMOUNT } from "../../statemachine/orchestrator/limits.js";
import type { ClientOptions } from "./client-options.js";

const ENV_NAME = new RegExp(ENV_NAME_PATTERN);
const FEATURE = new RegExp(FEATURE_PATTERN);

/**
 * CPU as cores (`1`, `0.5`, `2.25`, at most 3 decimals) or millicores (`500m`), to millicores.
 */
export function parseCpu(value: string): number {
  const text = value.trim();
  const millis = /^\d+m$/.test(text)
    ? Number(text.slice(0, -1))
    : /^\d+(?:\.\d{1,3})?$/.test(text)
      ? Math.round(Number(text) * 1000)
      : NaN;
  if (!Number.isSafeInteger(millis) || millis > MAX_RESOURCE_AMOUNT) {
    throw new InvalidArgumentError(
      `"${value}" is not a CPU amount: cores like 1 or 0.5 (3 decimals at most), or millicores like 500m`,
    );
  }
  return millis;
}

/** An integer ≥ 0 (memory MB, disk GB, timeouts, counts). */
export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`"${value}" is not an integer ≥ 0`);
  }
  return n;
}

/** `NAME=VALUE`, added to the earlier `--env` values (a later NAME wins). */
export function collectEnv(
  value: string,
  previous: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const at = value.indexOf("=");
  const name = at < 0 ? value : value.slice(0, at);
  if (at < 0 || !ENV_NAME.test(name)) {
    throw new InvalidArgumentError(
      `"${value}" is not NAME=VALUE with NAME made of letters, digits and _ (not starting with a digit)`,
    );
  }
  return { ...previous, [name]: value.slice(at + 1) };
}

/** One feature or a comma-separated list, added to the earlier `--feature` values. */
export function collectFeatures(value: string, previous: readonly string[] = []): string[] {
  const features = value
    .split(",")
    .map((f) => f.trim())
    .filter((f) => f !== "");
  if (features.length === 0) throw new InvalidArgumentError("give a feature name");
  for (const feature of features) {
    if (!FEATURE.test(feature)) {
      throw new InvalidArgumentError(
        `"${feature}" is not a feature name: letters, digits and . _ : - (starting with a letter or digit)`,
      );
    }
  }
  return [...new Set([...previous, ...features])];
}

/** Options of commands that read. */
export interface ReadCommandOptions extends ClientOptions {
  readonly consistency?: "linearizable" | "lease" | "stale";
}

/** The `--consistency` flag of read commands. */
export function consistencyOption(): Option {
  return new Option("--consistency <level>", "read consistency")
    .choices(["linearizable", "lease", "stale"])
    .default("linearizable");
}

/** The read options a command's flags ask for. */
export function readFlags(options: ReadCommandOptions): {
  consistency?: "linearizable" | "lease" | "stale";
} {
  return options.consistency === undefined ? {} : { consistency: options.consistency };
}
