/**
 * The operator's word on this host's capacity and features (flags or config), parsed and applied
 * to what was measured. Pure: no probing here, so every rule is unit-tested.
 *
 * Syntax:
 * - cpu: cores (`4`, `2.5`) or millicores (`2500m`).
 * - memory: MiB (`8192`) or with a binary unit: `512M`/`512MiB`, `8G`/`8GiB`, `1T`/`1TiB`
 *   (`MB`, `GB`, `TB` are read the same way, as memory sizes usually are).
 * - disk: GiB (`100`) or `100G`/`100GiB`, `2T`/`2TiB`; whole GiB only.
 * - features: a comma-separated list (or an array) of names (the model's rule: letters, digits,
 *   `.`, `_`, `:` and `-`, starting with a letter or digit, at most 64); `name` adds a feature,
 *   `-name` removes a detected one (e.g. `-kvm` where /dev/kvm exists but does not work).
 */
import { InvalidArgumentError } from "../../common/errors.js";
import { RESERVED_FEATURES } from "../../statemachine/orchestrator/features.js";
import { MAX_FEATURE_BYTES, MAX_FEATURES } from "../../statemachine/orchestrator/limits.js";
import type { Resources } from "../../statemachine/orchestrator/types.js";
import type { HostProbe } from "./probe.js";

/** Overrides as the operator wrote them; an absent field keeps the measurement. */
export interface HostOverrideInput {
  readonly cpu?: string;
  readonly memory?: string;
  readonly disk?: string;
  readonly features?: string | readonly string[];
}

/** Overrides parsed. */
export interface HostOverrides {
  readonly cpuMillis?: number;
  readonly memoryMb?: number;
  readonly diskGb?: number;
  /** Features added, sorted and unique. */
  readonly addFeatures: readonly string[];
  /** Detected features removed, sorted and unique. */
  readonly removeFeatures: readonly string[];
}

/** What this node registers as a worker. */
export interface HostResources {
  readonly capacity: Resources;
  /** Sorted, unique. */
  readonly features: readonly string[];
}

/** The model's rule for feature names (`spec-reader.ts`): ASCII, so characters are bytes. */
const FEATURE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/**
 * Parses every override given.
 * @throws InvalidArgumentError naming the field, the value and the accepted syntax.
 */
export function parseHostOverrides(input: HostOverrideInput): HostOverrides {
  const features = parseFeatures(input.features ?? []);
  return {
    ...(input.cpu === undefined ? {} : { cpuMillis: parseCpuMillis(input.cpu) }),
    ...(input.memory === undefined ? {} : { memoryMb: parseMemoryMb(input.memory) }),
    ...(input.disk === undefined ? {} : { diskGb: parseDiskGb(input.disk) }),
    ...features,
  };
}

/**
 * The capacity and features this node offers: the measurements with the overrides applied.
 * Detected features are `kvm` (the device is usable) and `qemu` (the binary was found).
 * @throws InvalidArgumentError when the result has more features than the model accepts.
 */
export function resolveHost(probe: HostProbe, overrides: HostOverrides): HostResources {
  const detected = [...(probe.kvm ? ["kvm"] : []), ...(probe.qemuPath !== null ? ["qemu"] : [])];
  const removed = new Set(overrides.removeFeatures);
  const features = [...new Set([...detected, ...overrides.addFeatures])]
    .filter((f) => !removed.has(f))
    .sort();
  if (features.length > MAX_FEATURES) {
    throw new InvalidArgumentError(
      `this node would offer ${features.length} features; a worker may have at most ${MAX_FEATURES}`,
    );
  }
  return {
    capacity: {
      cpuMillis: overrides.cpuMillis ?? probe.cpuMillis,
      memoryMb: overrides.memoryMb ?? probe.memoryMb,
      diskGb: overrides.diskGb ?? probe.diskGb,
    },
    features,
  };
}

/**
 * CPU in millicores from `4`, `2.5` (cores) or `2500m` (millicores); more than zero.
 * @throws InvalidArgumentError otherwise.
 */
export function parseCpuMillis(text: string): number {
  const value = text.trim();
  const millis = /^\d+m$/.test(value)
    ? Number(value.slice(0, -1))
    : /^\d+(\.\d{1,3})?$/.test(value)
      ? Math.round(Number(value) * 1000)
      : NaN;
  if (!Number.isSafeInteger(millis) || millis <= 0) {
    throw new InvalidArgumentError(
      `cpu ${JSON.stringify(text)} is not a CPU amount: give cores (4, 2.5) or millicores (2500m), more than zero`,
    );
  }
  return millis;
}

const MEMORY_UNITS_MB: Readonly<Record<string, number>> = {
  "": 1,
  m: 1,
  mb: 1,
  mib: 1,
  g: 1024,
  gb: 1024,
  gib: 1024,
  t: 1024 * 1024,
  tb: 1024 * 1024,
  tib: 1024 * 1024,
};

const DISK_UNITS_GB: Readonly<Record<string, number>> = {
  "": 1,
  g: 1,
  gb: 1,
  gib: 1,
  t: 1024,
  tb: 1024,
  tib: 1024,
};

/**
 * Memory in MiB from `8192`, `512M`, `8G`, `1T` (binary units); a whole number of MiB, more than
 * zero.
 * @throws InvalidArgumentError otherwise.
 */
export function parseMemoryMb(text: string): number {
  const mb = parseSize(text, MEMORY_UNITS_MB);
  if (mb === undefined || mb <= 0) {
    throw new InvalidArgumentError(
      `memory ${JSON.stringify(text)} is not a memory size: give MiB (8192) or a size with a unit (512M, 8G, 1T), more than zero`,
    );
  }
  return mb;
}

/**
 * Disk in GiB from `100`, `100G`, `2T` (binary units); a whole number of GiB, zero or more.
 * @throws InvalidArgumentError otherwise.
 */
export function parseDiskGb(text: string): number {
  const gb = parseSize(text, DISK_UNITS_GB);
  if (gb === undefined) {
    throw new InvalidArgumentError(
      `disk ${JSON.stringify(text)} is not a disk size: give whole GiB (100) or a size with a unit (100G, 2T)`,
    );
  }
  return gb;
}

/**
 * Features to add and remove from `a,b,-c` or `["a", "b", "-c"]`; names are what the model
 * accepts: up to 64 letters, digits, `.`, `_`, `:` and `-`, starting with a letter or digit.
 * @throws InvalidArgumentError for a malformed name or a feature both added and removed.
 */
export function parseFeatures(input: string | readonly string[]): {
  addFeatures: string[];
  removeFeatures: string[];
} {
  const items = (typeof input === "string" ? input.split(",") : input)
    .map((item) => item.trim())
    .filter((item) => item !== "");
  const add = new Set<string>();
  const remove = new Set<string>();
  for (const item of items) {
    const removing = item.startsWith("-");
    const name = removing ? item.slice(1) : item;
    if (name.length > MAX_FEATURE_BYTES || !FEATURE_PATTERN.test(name)) {
      throw new InvalidArgumentError(
        `feature ${JSON.stringify(item)} is not a feature name: use 1 to ${MAX_FEATURE_BYTES} letters, digits, ".", "_", ":" or "-", starting with a letter or digit (a leading "-" removes a detected feature)`,
      );
    }
    if (RESERVED_FEATURES.includes(name)) {
      throw new InvalidArgumentError(
        `feature ${name} is set by the node itself (raw_exec by --enable-raw-exec, cgroups when limits are enforced); it cannot be given in --features`,
      );
    }
    (removing ? remove : add).add(name);
  }
  const both = [...add].filter((name) => remove.has(name));
  if (both.length > 0) {
    throw new InvalidArgumentError(`feature ${both[0]} is both added and removed; keep one`);
  }
  return { addFeatures: [...add].sort(), removeFeatures: [...remove].sort() };
}

/** A whole number times its unit's factor, or undefined when malformed or not whole. */
function parseSize(text: string, units: Readonly<Record<string, number>>): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (match === null) return undefined;
  const factor = units[(match[2] ?? "").toLowerCase()];
  if (factor === undefined) return undefined;
  const value = Number(match[1]) * factor;
  return Number.isSafeInteger(value) ? value : undefined;
}
