import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix, relative, sep } from "node:path";

/**
 * The layer table of ARCHITECTURE.md as data: each layer (a folder under `src/`) and the layers
 * it may import. A lower layer never imports a higher one.
 */
export const ALLOWED_IMPORTS: Readonly<Record<string, readonly string[]>> = {
  common: [],
  platform: ["common"],
  raft: ["common"],
  statemachine: ["common", "raft"],
  storage: ["common", "raft"],
  security: ["common"],
  transport: ["common", "raft", "security"],
  node: ["common", "raft", "storage", "transport", "statemachine", "security"],
  orchestrator: [
    "common",
    "raft",
    "storage",
    "transport",
    "statemachine",
    "node",
    "platform",
    "security",
  ],
  api: [
    "common",
    "raft",
    "storage",
    "transport",
    "statemachine",
    "node",
    "orchestrator",
    "security",
  ],
  client: ["common", "api/schema"],
  sim: [
    "common",
    "raft",
    "storage",
    "transport",
    "statemachine",
    "node",
    "orchestrator",
    "api",
    "security",
  ],
  cli: [
    "common",
    "platform",
    "raft",
    "storage",
    "transport",
    "statemachine",
    "node",
    "orchestrator",
    "api",
    "client",
    "security",
  ],
};

/** One import that crosses the layer table the wrong way. */
export interface LayerViolation {
  readonly file: string;
  readonly specifier: string;
  readonly fromLayer: string;
  readonly toPath: string;
}

const IMPORT_PATTERN =
  /(?:^|[\s;])(?:import|export)\s[^'"`]*?from\s*["']([^"']+)["']|(?:^|[\s;(])import\s*\(\s*["']([^"']+)["']\s*\)|(?:^|[\s;])import\s*["']([^"']+)["']/gm;

/** The relative module specifiers a TypeScript source imports or re-exports. */
export function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(IMPORT_PATTERN)) {
    const specifier = match[1] ?? match[2] ?? match[3];
    if (specifier !== undefined) found.push(specifier);
  }
  return found;
}

/** The layer of a path relative to `src/` (its first folder), or undefined at the top. */
function layerOf(srcRelativePath: string): string | undefined {
  const parts = srcRelativePath.split("/");
  return parts.length > 1 ? parts[0] : undefined;
}

function allowedTarget(fromLayer: string, toPath: string): boolean {
  const toLayer = layerOf(toPath);
  if (toLayer === undefined || toLayer === fromLayer) return true;
  const allowed = ALLOWED_IMPORTS[fromLayer];
  if (allowed === undefined) return false;
  return allowed.some(
    (entry) => toPath === entry || toPath.startsWith(`${entry}/`) || toPath.startsWith(`${entry}.`),
  );
}

/**
 * Checks a set of sources, keyed by path relative to `src/` (posix separators), against
 * {@link ALLOWED_IMPORTS}. Unknown top-level folders are violations too: a new layer must be
 * added to the table on purpose.
 */
export function checkLayers(sources: ReadonlyMap<string, string>): LayerViolation[] {
  const violations: LayerViolation[] = [];
  for (const [file, source] of sources) {
    const fromLayer = layerOf(file);
    if (fromLayer === undefined) continue;
    for (const specifier of importSpecifiers(source)) {
      if (!specifier.startsWith(".")) continue;
      const toPath = posix.normalize(posix.join(posix.dirname(file), specifier));
      if (toPath.startsWith("..")) {
        violations.push({ file, specifier, fromLayer, toPath });
        continue;
      }
      if (!(fromLayer in ALLOWED_IMPORTS) || !allowedTarget(fromLayer, toPath)) {
        violations.push({ file, specifier, fromLayer, toPath });
      }
    }
  }
  return violations;
}

/** Reads every `.ts` file under `srcDir` into a map keyed by posix path relative to it. */
export function readSources(srcDir: string): Map<string, string> {
  const sources = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".ts")) {
        sources.set(relative(srcDir, path).split(sep).join("/"), readFileSync(path, "utf8"));
      }
    }
  };
  walk(srcDir);
  return sources;
}
