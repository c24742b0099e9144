/**
 * This host as a worker: its capacity and features, measured and then overridden by the
 * operator. The agent registers the result.
 */
import {
  parseHostOverrides,
  resolveHost,
  type HostOverrideInput,
  type HostResources,
} from "./overrides.js";
import { probeHost, type HostProbe, type ProbeOptions } from "./probe.js";

export * from "./overrides.js";
export * from "./probe.js";

/** The result of {@link detectHost}: what to register, and what was measured. */
export interface DetectedHost extends HostResources {
  readonly probe: HostProbe;
}

/**
 * Parses `overrides` (first, so a typo fails before anything is measured), measures the host
 * and applies them.
 * @throws InvalidArgumentError for a malformed override.
 */
export async function detectHost(
  options: ProbeOptions & { readonly overrides?: HostOverrideInput },
): Promise<DetectedHost> {
  const overrides = parseHostOverrides(options.overrides ?? {});
  const probe = await probeHost(options);
  return { ...resolveHost(probe, overrides), probe };
}
