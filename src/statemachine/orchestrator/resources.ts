/** Arithmetic on {@link Resources}: the three dimensions placement measures. */
import type { Resources, VmSpec } from "./types.js";

/** One dimension of {@link Resources}. */
export type ResourceDimension = keyof Resources;

/** The dimensions in the order messages and scores use them. */
export const RESOURCE_DIMENSIONS: readonly ResourceDimension[] = [
  "cpuMillis",
  "memoryMb",
  "diskGb",
];

/** How an amount of each dimension reads in a message: "2000 millicores of cpu". */
const UNIT_PHRASES: Readonly<Record<ResourceDimension, string>> = {
  cpuMillis: "millicores of cpu",
  memoryMb: "MB of memory",
  diskGb: "GB of disk",
};

/** No resources. */
export const ZERO_RESOURCES: Resources = Object.freeze({ cpuMillis: 0, memoryMb: 0, diskGb: 0 });

/** `a + b`, dimension by dimension. Throws nothing. */
export function addResources(a: Resources, b: Resources): Resources {
  return Object.freeze({
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryMb: a.memoryMb + b.memoryMb,
    diskGb: a.diskGb + b.diskGb,
  });
}

/** `a − b`, dimension by dimension (may be negative). Throws nothing. */
export function subtractResources(a: Resources, b: Resources): Resources {
  return Object.freeze({
    cpuMillis: a.cpuMillis - b.cpuMillis,
    memoryMb: a.memoryMb - b.memoryMb,
    diskGb: a.diskGb - b.diskGb,
  });
}

/** True if `request` is at most `available` in every dimension. Throws nothing. */
export function fitsWithin(request: Resources, available: Resources): boolean {
  return RESOURCE_DIMENSIONS.every((dimension) => request[dimension] <= available[dimension]);
}

/** True if both have the same amount of every dimension. Throws nothing. */
export function resourcesEqual(a: Resources, b: Resources): boolean {
  return RESOURCE_DIMENSIONS.every((dimension) => a[dimension] === b[dimension]);
}

/** What a VM holds on its worker: `vcpus × 1000` millicores, its memory and its disk. Throws nothing. */
export function vmResources(spec: VmSpec): Resources {
  return Object.freeze({
    cpuMillis: spec.vcpus * 1000,
    memoryMb: spec.memoryMb,
    diskGb: spec.diskGb,
  });
}

/** An amount as a phrase with its unit, e.g. `describeAmount("cpuMillis", 2000)` → "2000 millicores of cpu". */
export function describeAmount(dimension: ResourceDimension, amount: number): string {
  return `${amount} ${UNIT_PHRASES[dimension]}`;
}

/** A whole request as a phrase: "2000 millicores of cpu, 512 MB of memory and 0 GB of disk". */
export function describeResources(resources: Resources): string {
  const parts = RESOURCE_DIMENSIONS.map((dimension) =>
    describeAmount(dimension, resources[dimension]),
  );
  return `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1] ?? ""}`;
}
