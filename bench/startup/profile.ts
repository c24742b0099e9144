/**
 * Where a start-up's CPU went, from the `.cpuprofile` files `node --cpu-prof` writes: the
 * profiles' self time summed by function and by origin (a package under node_modules, the
 * project's dist/, Node's own internals), over the samples of the first `windowMs` of each
 * profile: the start-up, not the idle wait and the stop after it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The parts of V8's `.cpuprofile` JSON read here. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string };
  }[];
  readonly samples: readonly number[];
  /** Microseconds since the previous sample (the first: since the profile's start). */
  readonly timeDeltas: readonly number[];
}

/** Milliseconds of self time by key, summed over profiles. */
type Totals = Map<string, number>;

/** Self time of every profile in `dir` within its first `windowMs`, by function and by origin. */
export function summarizeProfiles(
  dir: string,
  windowMs: number,
): { profiles: number; byFunction: Totals; byOrigin: Totals } {
  const byFunction: Totals = new Map();
  const byOrigin: Totals = new Map();
  const files = readdirSync(dir).filter((name) => name.endsWith(".cpuprofile"));
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    let elapsedUs = 0;
    for (let i = 0; i < profile.samples.length; i++) {
      const deltaUs = profile.timeDeltas[i] ?? 0;
      elapsedUs += deltaUs;
      if (elapsedUs > windowMs * 1000) break;
      const frame = frames.get(profile.samples[i] ?? -1);
      if (frame === undefined) continue;
      const name = `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}`.trim();
      add(byFunction, name, deltaUs / 1000);
      add(byOrigin, origin(frame.url, frame.functionName), deltaUs / 1000);
    }
  }
  return { profiles: files.length, byFunction, byOrigin };
}

/** The `top` largest entries, as printable lines of milliseconds per profile. */
export function topLines(totals: Totals, profiles: number, top = 15): string[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, ms]) => `${(ms / Math.max(1, profiles)).toFixed(1).padStart(8)} ms  ${key}`);
}

function add(totals: Totals, key: string, ms: number): void {
  totals.set(key, (totals.get(key) ?? 0) + ms);
}

/** Which code a frame belongs to: a package, the project, Node itself, or V8's own entries. */
function origin(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return `package ${pkg[1]}`;
  if (url.startsWith("node:")) return "node internals";
  const project = /\/(dist|bin)\/(.*)$/.exec(url);
  if (project !== null) return `project ${project[1]}/${project[2]?.split("/")[0] ?? ""}`;
  return url;
}

/** A url without the path up to node_modules/ or the project's dist/. */
function shortUrl(url: string): string {
  const cut = /(node_modules\/.*|dist\/.*|bin\/.*)$/.exec(url);
  return cut?.[1] ?? url;
}
