/**
 * Defaults in option help come from the constants the code uses, never from prose in a
 * description (`test/cli/help.test.ts` walks the command tree to hold every option to that).
 *
 * Commander shows a default only for an option whose default it applies itself. Many of ours are
 * applied later, on purpose: by the node after its config file and environment (`node start`), by
 * the client or the server when the flag is absent (`--timeout`, a task's `--cpu`). Such an option
 * carries its default as commander's `defaultValueDescription` with no `defaultValue`
 * ({@link defaultShown}), and {@link optionHelp} shows it like any other default.
 */
import type { Help, Option } from "commander";

/**
 * Marks `option` as defaulting to `shown` (a constant the code applies, or a short phrase for a
 * computed default such as "detected") without commander applying it. Returns `option`.
 */
export function defaultShown(option: Option, shown: string | number): Option {
  return option.default(undefined, String(shown));
}

/**
 * An option's help text: its description, then its choices, its default (applied by commander,
 * or only described, see {@link defaultShown}) and its environment variable. Throws nothing.
 */
export function optionHelp(option: Option, _help?: Help): string {
  const extra: string[] = [];
  if (option.argChoices !== undefined) {
    extra.push(`choices: ${option.argChoices.map((choice) => JSON.stringify(choice)).join(", ")}`);
  }
  const shown =
    option.defaultValueDescription ??
    (option.defaultValue === undefined || (option.isBoolean() && option.defaultValue === false)
      ? undefined
      : JSON.stringify(option.defaultValue));
  if (shown !== undefined) extra.push(`default: ${shown}`);
  if (option.envVar !== undefined) extra.push(`env: ${option.envVar}`);
  if (extra.length === 0) return option.description;
  const suffix = `(${extra.join(", ")})`;
  return option.description === "" ? suffix : `${option.description} ${suffix}`;
}
