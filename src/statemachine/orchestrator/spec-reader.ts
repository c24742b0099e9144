/**
 * Strict readers of the orchestrator's value types: resources, task and VM specs, task results,
 * settings. Each takes any value (decoded JSON or a caller's object), checks every field against
 * the limits in `limits.ts`, and returns a fresh, frozen copy with its keys in one fixed order, so
 * `JSON.stringify` of the copy is the canonical encoding. They throw `InvalidArgumentError` (bad
 * shape or value) or `TooLargeError` (over a size limit).
 */
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import { utf8ByteLength } from "../codec/utf8.js";
import { reservedEnvReason } from "./env-names.js";
import {
  FieldReader,
  LazyPath,
  checkString,
  type FieldPath,
  type StringRules,
} from "./field-reader.js";
import {
  MAX_ARGS,
  MAX_ARG_BYTES,
  MAX_ENV_ENTRIES,
  MAX_ENV_NAME_BYTES,
  MAX_ERROR_BYTES,
  MAX_FEATURES,
  MAX_FEATURE_BYTES,
  MAX_GROUP_BYTES,
  MAX_PATH_BYTES,
  MAX_RESOURCE_AMOUNT,
  MAX_SPEC_BYTES,
  MAX_TASK_ATTEMPTS,
  MAX_TASK_OUTPUT_BYTES,
  MAX_TASK_TIMEOUT_MS,
  MAX_VM_BACKOFF_MS,
  MAX_VM_RESTARTS,
  MAX_VM_VCPUS,
  MAX_VM_PUBLISHED_PORTS,
  MAX_PORT,
  MIN_VM_HEALTH_INTERVAL_MS,
  MAX_VM_HEALTH_INTERVAL_MS,
  MAX_VM_HEALTH_TIMEOUT_MS,
  MAX_VM_HEALTH_FAILURES,
  MAX_VM_HEALTH_COMMAND_BYTES,
} from "./limits.js";
import type {
  PublishedPort,
  OrchestratorSettings,
  Resources,
  RestartPolicy,
  TaskResult,
  TaskSpec,
  VmHealthCheck,
  VmSpec,
} from "./types.js";

/** Feature and anti-affinity group names: letters, digits and `._:-`, starting with a letter or digit. */
const NAME_RULES: Pick<StringRules, "pattern" | "patternHint"> = {
  pattern: /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
  patternHint: "use letters, digits and . _ : - (starting with a letter or digit)",
};
const FEATURE_RULES: StringRules = { maxBytes: MAX_FEATURE_BYTES, nonEmpty: true, ...NAME_RULES };
const GROUP_RULES: StringRules = { maxBytes: MAX_GROUP_BYTES, ...NAME_RULES };
const PATH_RULES: StringRules = { maxBytes: MAX_PATH_BYTES, noNul: true };
const COMMAND_RULES: StringRules = { ...PATH_RULES, nonEmpty: true };
const ARG_RULES: StringRules = { maxBytes: MAX_ARG_BYTES, noNul: true };
const ENV_NAME_RULES: StringRules = {
  maxBytes: MAX_ENV_NAME_BYTES,
  nonEmpty: true,
  pattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
  patternHint: "use letters, digits and _ (not starting with a digit)",
};

/**
 * Reads what a task asks for: like {@link readResources}, but CPU and memory must be at least 1
 * (they become the task's hard limits; a task asking for nothing would run unbounded and never
 * count against a worker's capacity).
 */
export function readTaskResources(fields: FieldReader): Resources {
  const resources = readResources(fields);
  for (const dimension of ["cpuMillis", "memoryMb"] as const) {
    if (resources[dimension] === 0) {
      throw new InvalidArgumentError(
        `${fields.path(dimension)} must be at least 1: a task's CPU and memory are its hard limits`,
      );
    }
  }
  return resources;
}

/** Reads `{cpuMillis, memoryMb, diskGb}`, each an integer in 0..{@link MAX_RESOURCE_AMOUNT}. */
export function readResources(fields: FieldReader): Resources {
  const resources: Resources = {
    cpuMillis: fields.integer("cpuMillis", 0, MAX_RESOURCE_AMOUNT),
    memoryMb: fields.integer("memoryMb", 0, MAX_RESOURCE_AMOUNT),
    diskGb: fields.integer("diskGb", 0, MAX_RESOURCE_AMOUNT),
  };
  fields.end();
  return Object.freeze(resources);
}

/** Reads a list of feature names (any order, duplicates allowed; see {@link normalizeFeatures}). */
export function readFeatures(fields: FieldReader, name: string): readonly string[] {
  return fields.array(name, MAX_FEATURES, (item, path) => checkString(item, path, FEATURE_RULES));
}

/** `features` sorted (by code unit; names are ASCII) without duplicates, frozen. Throws nothing. */
export function normalizeFeatures(features: readonly string[]): readonly string[] {
  return Object.freeze([...new Set(features)].sort());
}

function readArgs(fields: FieldReader): readonly string[] {
  return fields.array("args", MAX_ARGS, (item, path) => checkString(item, path, ARG_RULES));
}

/**
 * Reads an environment (field `name`) as an object of string values, returned with its names
 * sorted. Names the node reserves (`env-names.ts`) are refused.
 */
function readEnv(fields: FieldReader, name: string): Readonly<Record<string, string>> {
  return fields.object(name, (env) => {
    const names = [...env.keys()].sort();
    if (names.length > MAX_ENV_ENTRIES) {
      throw new TooLargeError(
        `${env.location} has ${names.length} variables; the limit is ${MAX_ENV_ENTRIES}`,
      );
    }
    // fromEntries defines own properties, so a name like "__proto__" stays a plain entry.
    const entries = names.map((name) => {
      checkString(
        name,
        new LazyPath(new LazyPath(env.lazyLocation, name), "name", true),
        ENV_NAME_RULES,
      );
      const reserved = reservedEnvReason(name);
      if (reserved !== undefined) {
        throw new InvalidArgumentError(`${env.path(name)} may not be set: ${reserved}`);
      }
      return [name, env.string(name, ARG_RULES)] as const;
    });
    env.end();
    return Object.freeze(Object.fromEntries(entries));
  });
}

/** The UTF-8 bytes of all the strings of a list, or of a record's names and values. */
function stringBytes(strings: Iterable<string>): number {
  let total = 0;
  for (const text of strings) total += utf8ByteLength(text) ?? 0;
  return total;
}

/** The bytes a task spec's strings take; what {@link MAX_SPEC_BYTES} bounds. Throws nothing. */
export function taskSpecBytes(spec: TaskSpec): number {
  return (
    stringBytes([spec.command, spec.cwd]) +
    stringBytes(spec.args) +
    stringBytes(Object.keys(spec.env)) +
    stringBytes(Object.values(spec.env)) +
    stringBytes(Object.keys(spec.secretEnv ?? {})) +
    stringBytes(Object.values(spec.secretEnv ?? {})) +
    stringBytes(spec.requiredFeatures)
  );
}

/** The bytes a VM spec's strings take; what {@link MAX_SPEC_BYTES} bounds. Throws nothing. */
export function vmSpecBytes(spec: VmSpec): number {
  return (
    stringBytes([
      spec.command,
      spec.kernel,
      spec.initrd,
      spec.image,
      spec.cmdline,
      spec.antiAffinityGroup,
      spec.health?.command ?? "",
    ]) +
    stringBytes(spec.args) +
    stringBytes(spec.requiredFeatures)
  );
}

function checkSpecBytes(specBytes: number, path: FieldPath): void {
  if (specBytes > MAX_SPEC_BYTES) {
    throw new TooLargeError(
      `${path} holds ${specBytes} bytes of strings; the limit is ${MAX_SPEC_BYTES} bytes`,
    );
  }
}

/**
 * Reads a task's secret environment: optional, and canonically absent when empty (so specs
 * without secrets keep their encoding). Its names may not repeat one of `env`.
 */
function readSecretEnv(
  fields: FieldReader,
  env: Readonly<Record<string, string>>,
): { readonly secretEnv?: Readonly<Record<string, string>> } {
  if (!fields.has("secretEnv")) return {};
  const secretEnv = readEnv(fields, "secretEnv");
  const names = Object.keys(secretEnv);
  if (names.length + Object.keys(env).length > MAX_ENV_ENTRIES) {
    throw new TooLargeError(
      `${fields.location} sets ${names.length + Object.keys(env).length} variables; the limit is ${MAX_ENV_ENTRIES}`,
    );
  }
  const twice = names.find((name) => Object.hasOwn(env, name));
  if (twice !== undefined) {
    throw new InvalidArgumentError(
      `${fields.path("secretEnv")}.${twice} is also in env: a variable is either secret or not`,
    );
  }
  return names.length === 0 ? {} : { secretEnv };
}

/** Reads a task spec (see {@link TaskSpec} and `limits.ts` for the rules). */
export function readTaskSpec(fields: FieldReader): TaskSpec {
  const env = readEnv(fields, "env");
  const spec: TaskSpec = {
    command: fields.string("command", COMMAND_RULES),
    args: readArgs(fields),
    env,
    ...readSecretEnv(fields, env),
    cwd: fields.string("cwd", PATH_RULES),
    shell: fields.boolean("shell"),
    resources: fields.object("resources", readTaskResources),
    requiredFeatures: readFeatures(fields, "requiredFeatures"),
    timeoutMs: fields.integer("timeoutMs", 0, MAX_TASK_TIMEOUT_MS),
    maxAttempts: fields.integer("maxAttempts", 1, MAX_TASK_ATTEMPTS),
  };
  fields.end();
  checkSpecBytes(taskSpecBytes(spec), fields.lazyLocation);
  return Object.freeze(spec);
}

function readRestartPolicy(fields: FieldReader): RestartPolicy {
  const policy: RestartPolicy = {
    mode: fields.oneOf("mode", ["never", "on-failure"] as const),
    maxRestarts: fields.integer("maxRestarts", 0, MAX_VM_RESTARTS),
    backoffMs: fields.integer("backoffMs", 0, MAX_VM_BACKOFF_MS),
  };
  fields.end();
  return Object.freeze(policy);
}

/**
 * Reads a VM's published ports: optional, canonically absent when empty; each host port at most
 * once (two forwards of one host port cannot both listen).
 */
function readPublish(fields: FieldReader): { readonly publish?: readonly PublishedPort[] } {
  if (!fields.has("publish")) return {};
  const publish = fields.array("publish", MAX_VM_PUBLISHED_PORTS, (item, path) => {
    const port = new FieldReader(item, path);
    const forward: PublishedPort = {
      hostPort: port.integer("hostPort", 1, MAX_PORT),
      guestPort: port.integer("guestPort", 1, MAX_PORT),
    };
    port.end();
    return Object.freeze(forward);
  });
  const seen = new Set<number>();
  for (const forward of publish) {
    if (seen.has(forward.hostPort)) {
      throw new InvalidArgumentError(
        `${fields.path("publish")} names host port ${forward.hostPort} twice; a host port can be published once`,
      );
    }
    seen.add(forward.hostPort);
  }
  return publish.length === 0 ? {} : { publish };
}

const HEALTH_COMMAND_RULES: StringRules = { maxBytes: MAX_VM_HEALTH_COMMAND_BYTES, noNul: true };

/**
 * Reads a VM's health check: optional; exactly one of `tcpPort` and `command` set; a probe's
 * timeout no longer than its interval (probes never overlap).
 */
function readHealth(fields: FieldReader): { readonly health?: VmHealthCheck } {
  if (!fields.has("health")) return {};
  const health = fields.object("health", (check): VmHealthCheck => {
    const read: VmHealthCheck = {
      tcpPort: check.integer("tcpPort", 0, MAX_PORT),
      command: check.string("command", HEALTH_COMMAND_RULES),
      intervalMs: check.integer("intervalMs", MIN_VM_HEALTH_INTERVAL_MS, MAX_VM_HEALTH_INTERVAL_MS),
      timeoutMs: check.integer("timeoutMs", 1, MAX_VM_HEALTH_TIMEOUT_MS),
      failureThreshold: check.integer("failureThreshold", 1, MAX_VM_HEALTH_FAILURES),
    };
    check.end();
    if ((read.tcpPort === 0) === (read.command === "")) {
      throw new InvalidArgumentError(
        `${check.location} must set exactly one of tcpPort (a guest port) and command (run through the guest agent)`,
      );
    }
    if (read.timeoutMs > read.intervalMs) {
      throw new InvalidArgumentError(
        `${check.path("timeoutMs")} (${read.timeoutMs}) must not exceed intervalMs (${read.intervalMs}): probes never overlap`,
      );
    }
    return Object.freeze(read);
  });
  return { health };
}

/** Checks that a VM spec sets exactly what its driver uses. */
function checkDriverFields(spec: VmSpec, path: string): void {
  const setFields = (names: readonly (keyof VmSpec)[]): string[] =>
    names.filter((name) => {
      const value = spec[name];
      return Array.isArray(value) ? value.length > 0 : value !== "" && value !== undefined;
    });
  if (spec.driver === "process") {
    if (spec.command === "") {
      throw new InvalidArgumentError(`${path}.command is required by the process driver`);
    }
    const unused = setFields(["kernel", "initrd", "image", "cmdline", "publish", "health"]);
    if (unused.length > 0) {
      throw new InvalidArgumentError(
        `${path}: ${unused.join(", ")} ${unused.length > 1 ? "are qemu settings" : "is a qemu setting"}; ` +
          "the process driver runs command with args",
      );
    }
    return;
  }
  if (spec.kernel === "" && spec.image === "") {
    throw new InvalidArgumentError(
      `${path}: the qemu driver needs a kernel (with an optional initrd) or a disk image`,
    );
  }
  const unused = setFields(["command", "args"]);
  if (unused.length > 0) {
    throw new InvalidArgumentError(
      `${path}: ${unused.join(" and ")} ${unused.length > 1 ? "are" : "is"} for the process driver; ` +
        "the qemu driver boots kernel or image",
    );
  }
  if (spec.kernel === "" && (spec.initrd !== "" || spec.cmdline !== "")) {
    throw new InvalidArgumentError(`${path}: initrd and cmdline need a kernel`);
  }
}

/** Reads a VM spec (see {@link VmSpec}; the driver's own rules are checked too). */
export function readVmSpec(fields: FieldReader): VmSpec {
  const spec: VmSpec = {
    vcpus: fields.integer("vcpus", 1, MAX_VM_VCPUS),
    memoryMb: fields.integer("memoryMb", 1, MAX_RESOURCE_AMOUNT),
    diskGb: fields.integer("diskGb", 0, MAX_RESOURCE_AMOUNT),
    driver: fields.oneOf("driver", ["process", "qemu"] as const),
    command: fields.string("command", PATH_RULES),
    args: readArgs(fields),
    kernel: fields.string("kernel", PATH_RULES),
    initrd: fields.string("initrd", PATH_RULES),
    image: fields.string("image", PATH_RULES),
    cmdline: fields.string("cmdline", PATH_RULES),
    requiredFeatures: readFeatures(fields, "requiredFeatures"),
    antiAffinityGroup: fields.string("antiAffinityGroup", GROUP_RULES),
    restart: fields.object("restart", readRestartPolicy),
    ...readPublish(fields),
    ...readHealth(fields),
  };
  fields.end();
  const path = fields.location;
  checkDriverFields(spec, path);
  checkSpecBytes(vmSpecBytes(spec), path);
  return Object.freeze(spec);
}

/** The lowest and highest exit code accepted: any 32-bit value, signed or not. */
const MIN_EXIT_CODE = -(2 ** 31);
const MAX_EXIT_CODE = 2 ** 32 - 1;

/** Reads a task result; outputs over {@link MAX_TASK_OUTPUT_BYTES} are refused, not cut. */
export function readTaskResult(fields: FieldReader): TaskResult {
  const output: StringRules = { maxBytes: MAX_TASK_OUTPUT_BYTES };
  const result: TaskResult = {
    exitCode: fields.nullableInteger("exitCode", MIN_EXIT_CODE, MAX_EXIT_CODE),
    stdout: fields.string("stdout", output),
    stderr: fields.string("stderr", output),
    stdoutTruncated: fields.boolean("stdoutTruncated"),
    stderrTruncated: fields.boolean("stderrTruncated"),
    durationMs: fields.integer("durationMs", 0, Number.MAX_SAFE_INTEGER),
    error: fields.string("error", { maxBytes: MAX_ERROR_BYTES }),
  };
  fields.end();
  return Object.freeze(result);
}

/** The bytes a task result's strings take (for the finished-task bound). Throws nothing. */
export function taskResultBytes(result: TaskResult): number {
  return stringBytes([result.stdout, result.stderr, result.error]);
}

/** Reads orchestrator settings. */
export function readSettings(fields: FieldReader): OrchestratorSettings {
  const settings: OrchestratorSettings = {
    placement: fields.oneOf("placement", ["binpack", "spread"] as const),
  };
  fields.end();
  return Object.freeze(settings);
}

/** The default settings: bin-packing. */
export const DEFAULT_SETTINGS: OrchestratorSettings = Object.freeze({ placement: "binpack" });
