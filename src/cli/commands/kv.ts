/** `blixard kv put|get|del|cas`: the key-value store through {@link BlixardClient}. */
import { defaultShown } from "../option-defaults.js";
import { Command, Option } from "commander";
import type { CasExpected, KvEntry } from "../../client/index.js";
import { ConflictError, NotFoundError } from "../../common/errors.js";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

interface GetOptions extends ClientOptions {
  readonly consistency: "linearizable" | "lease" | "stale";
}

interface CasOptions extends ClientOptions {
  readonly expectValue?: string;
  readonly expectRevision?: number;
  readonly expectAbsent?: boolean;
}

/** Registers the `kv` commands on `program`. */
export function registerKvCommands(program: Command): void {
  const kv = program.command("kv").description("read and write the key-value store");
  registerKvWatch(kv);

  withClientOptions(kv.command("put").description("set KEY to VALUE"))
    .argument("<key>")
    .argument("<value>")
    .option("--lease <id>", "attach the key to this lease", parsePositiveInt)
    .action(async (key: string, value: string, options: ClientOptions & { lease?: number }) => {
      const result = await clientFrom(options).put(
        key,
        value,
        options.lease === undefined ? {} : { lease: options.lease },
      );
      if (options.json === true) printJson(result);
      else process.stdout.write(`OK (revision ${result.revision})\n`);
    });

  withClientOptions(kv.command("get").description("print the value of KEY (exit 3 if absent)"))
    .argument("<key>")
    .addOption(
      new Option("--consistency <level>", "read consistency")
        .choices(["linearizable", "lease", "stale"])
        .default("linearizable"),
    )
    .action(async (key: string, options: GetOptions) => {
      const result = await clientFrom(options).get(key, { consistency: options.consistency });
      if (result === null) throw new NotFoundError(`key "${key}" not found`);
      if (options.json === true)
        printJson({ revision: result.revision, ...entryJson(result.entry) });
      else if (result.entry.valueText !== undefined)
        process.stdout.write(`${result.entry.valueText}\n`);
      else process.stdout.write(result.entry.value);
    });

  withClientOptions(kv.command("del").alias("delete").description("delete KEY"))
    .argument("<key>")
    .action(async (key: string, options: ClientOptions) => {
      const result = await clientFrom(options).delete(key);
      if (options.json === true) printJson(result);
      else if (result.deleted) process.stdout.write(`deleted (revision ${result.revision})\n`);
      else process.stdout.write(`key "${key}" did not exist\n`);
    });

  withClientOptions(
    kv
      .command("cas")
      .description(
        "set KEY to VALUE only if the expectation holds (exit 4 CONFLICT if it does not);\n" +
          "give exactly one of --expect-value, --expect-revision, --expect-absent",
      ),
  )
    .argument("<key>")
    .argument("<value>")
    .option("--expect-value <v>", "the current value must be <v>")
    .option("--expect-revision <n>", "the key's modRevision must be <n>", parsePositiveInt)
    .option("--expect-absent", "the key must not exist")
    .action(async (key: string, value: string, options: CasOptions, command: Command) => {
      const expectations: CasExpected[] = [];
      if (options.expectValue !== undefined) expectations.push({ value: options.expectValue });
      if (options.expectRevision !== undefined) {
        expectations.push({ modRevision: options.expectRevision });
      }
      if (options.expectAbsent === true) expectations.push({ absent: true });
      const [expected] = expectations;
      if (expectations.length !== 1 || expected === undefined) {
        command.error(
          "error: give exactly one of --expect-value, --expect-revision, --expect-absent",
          { exitCode: 64, code: "blixard.usage" },
        );
      }
      const result = await clientFrom(options).cas(key, { expected, value });
      if (options.json === true) {
        printJson(
          result.succeeded
            ? result
            : { ...result, current: result.current === null ? null : entryJson(result.current) },
        );
      }
      if (!result.succeeded) {
        const current =
          result.current === null
            ? "the key is absent"
            : `modRevision ${result.current.modRevision}`;
        throw new ConflictError(`compare failed: ${current}`);
      }
      if (options.json !== true) process.stdout.write(`OK (revision ${result.revision})\n`);
    });
}

interface WatchCliOptions extends ClientOptions {
  readonly exact?: boolean;
  readonly fromRevision?: number;
}

/**
 * `kv watch [PREFIX]`: prints each put and delete until interrupted (one JSON line with --json,
 * its entry's value as `value` when UTF-8 text, else `valueBase64`, as the watch API sends it).
 */
function registerKvWatch(kv: Command): void {
  withClientOptions(
    kv
      .command("watch")
      .description(
        "print every put and delete of keys under PREFIX (default: all) as they happen,\n" +
          "resuming by itself across reconnects; exit 21 GONE if --from-revision was compacted",
      ),
  )
    .argument("[prefix]", "the key prefix (a key with --exact)", "")
    .option("--exact", "watch exactly the key PREFIX, not a prefix")
    .addOption(
      defaultShown(
        new Option("--from-revision <n>", "start at this revision").argParser(parsePositiveInt),
        "now",
      ),
    )
    .action(async (prefix: string, options: WatchCliOptions) => {
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      process.once("SIGTERM", () => controller.abort());
      for await (const event of clientFrom(options).watch({
        ...(options.exact === true ? { key: prefix } : { prefix }),
        ...(options.fromRevision === undefined ? {} : { fromRevision: options.fromRevision }),
        signal: controller.signal,
      })) {
        if (options.json === true) {
          printJson({
            type: event.type,
            key: event.key,
            revision: event.revision,
            ...(event.entry === undefined ? {} : { entry: eventEntryJson(event.entry) }),
          });
        } else if (event.type === "delete") {
          process.stdout.write(`${event.revision} DELETE ${event.key}\n`);
        } else {
          const value = event.entry?.valueText ?? `<${event.entry?.value.length ?? 0} bytes>`;
          process.stdout.write(`${event.revision} PUT ${event.key} ${value}\n`);
        }
      }
    });
}

/** An entry of a watch event as the API sends it: `value` if UTF-8 text, else `valueBase64`. */
function eventEntryJson(entry: KvEntry): Record<string, unknown> {
  return {
    key: entry.key,
    ...(entry.valueText === undefined
      ? { valueBase64: Buffer.from(entry.value).toString("base64") }
      : { value: entry.valueText }),
    createRevision: entry.createRevision,
    modRevision: entry.modRevision,
    version: entry.version,
  };
}

function entryJson(entry: KvEntry): Record<string, unknown> {
  return {
    key: entry.key,
    ...(entry.valueText === undefined ? {} : { value: entry.valueText }),
    valueBase64: Buffer.from(entry.value).toString("base64"),
    createRevision: entry.createRevision,
    modRevision: entry.modRevision,
    version: entry.version,
  };
}
