/**
 * The simulator's command line:
 *
 *   npm run sim -- --seeds 100 [--from 1]     run seeds 1..100 (or from..from+99)
 *   npm run sim -- --seed 12345               replay one seed, with its full report
 *
 * Other options (each is part of the replay command a failure prints): --duration <ms>,
 * --nodes <3|5>, --clients <n>, --membership <true|false>, --faults <kind,kind|none>,
 * --network <minDelayMs,maxDelayMs,lossRate,duplicateRate>, --bug ack-before-durable |
 * cas-ignores-expected:<node> | grant-all-votes, --json.
 * Exits 1 if any seed found a violation, 64 on bad usage.
 */
import process from "node:process";
import type { PlantedBugs } from "./cluster.js";
import { FAULT_KINDS, type FaultKind } from "./nemesis.js";
import { runSimulation, type SimulationOptions, type SimulationReport } from "./run.js";

const USAGE_EXIT_CODE = 64;

function usage(message: string): never {
  console.error(`sim: ${message}`);
  console.error("usage: npm run sim -- (--seed <n> | --seeds <count> [--from <n>]) [options]");
  process.exit(USAGE_EXIT_CODE);
}

function parseArgs(argv: readonly string[]) {
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) usage(`unexpected argument ${arg}`);
    const name = arg.slice(2);
    if (name === "json") {
      flags.set(name, ["true"]);
      continue;
    }
    const value = argv[++i];
    if (value === undefined) usage(`--${name} needs a value`);
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return flags;
}

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) usage(`--${name} must be an integer`);
  return n;
}

function baseOptions(flags: Map<string, string[]>): Omit<SimulationOptions, "seed"> {
  const one = (name: string): string | undefined => flags.get(name)?.at(-1);
  const bugs: { -readonly [K in keyof PlantedBugs]: PlantedBugs[K] } = {};
  for (const bug of flags.get("bug") ?? []) {
    if (bug === "ack-before-durable") bugs.ackBeforeDurable = true;
    else if (bug === "grant-all-votes") bugs.grantAllVotes = true;
    else if (bug.startsWith("cas-ignores-expected:")) {
      bugs.casIgnoresExpectedOnNode = integer(bug.split(":")[1], "bug") ?? 1;
    } else usage(`unknown bug ${bug}`);
  }
  const faults = one("faults");
  const network = one("network")?.split(",").map(Number);
  if (network !== undefined && (network.length !== 4 || network.some((n) => !Number.isFinite(n)))) {
    usage("--network takes minDelayMs,maxDelayMs,lossRate,duplicateRate");
  }
  const membership = one("membership");
  const options: { -readonly [K in keyof SimulationOptions]?: SimulationOptions[K] } = {};
  const durationMs = integer(one("duration"), "duration");
  if (durationMs !== undefined) options.durationMs = durationMs;
  const nodes = integer(one("nodes"), "nodes");
  if (nodes !== undefined) options.nodes = nodes;
  const clients = integer(one("clients"), "clients");
  if (clients !== undefined) options.clients = clients;
  if (membership !== undefined) options.membership = membership === "true";
  if (faults !== undefined) {
    const kinds = faults === "none" ? [] : faults.split(",");
    for (const kind of kinds) {
      if (!(FAULT_KINDS as readonly string[]).includes(kind)) usage(`unknown fault kind ${kind}`);
    }
    options.faults = kinds as FaultKind[];
  }
  if (network !== undefined) {
    const [minDelayMs, maxDelayMs, lossRate, duplicateRate] = network as [
      number,
      number,
      number,
      number,
    ];
    options.network = { minDelayMs, maxDelayMs, lossRate, duplicateRate };
  }
  if (Object.keys(bugs).length > 0) options.bugs = bugs;
  return options;
}

function summary(report: SimulationReport): string {
  const p = report.parameters;
  return (
    `seed ${report.seed}: ${report.violations.length === 0 ? "ok" : "FAILED"} ` +
    `nodes=${p.nodes} membership=${p.membership} loss=${p.network.lossRate} dup=${p.network.duplicateRate} ` +
    `delay<=${p.network.maxDelayMs}ms ops=${report.operations.total} (unknown ${report.operations.unknown}) ` +
    `faults=${Object.values(report.faultsInjected).reduce((a, b) => a + b, 0)} ` +
    `virtual=${report.virtualTimeMs}ms events=${report.events} trace=${report.traceHash}`
  );
}

function printFailure(report: SimulationReport): void {
  console.log(`\nFAILED seed ${report.seed}`);
  for (const v of report.violations) console.log(`  [${v.property}] at ${v.atMs} ms: ${v.message}`);
  console.log(`  replay: ${report.replayCommand}\n`);
}

async function main(): Promise<void> {
  const flags = parseArgs(process.argv.slice(2));
  const options = baseOptions(flags);
  const json = flags.has("json");
  const single = integer(flags.get("seed")?.at(-1), "seed");
  let seeds: number[];
  if (single !== undefined) seeds = [single];
  else {
    const count = integer(flags.get("seeds")?.at(-1), "seeds") ?? 10;
    const from = integer(flags.get("from")?.at(-1), "from") ?? 1;
    seeds = Array.from({ length: count }, (_, i) => from + i);
  }
  let failed = 0;
  const started = performance.now();
  for (const seed of seeds) {
    const report = await runSimulation({ seed, ...options });
    if (json) console.log(JSON.stringify(report));
    else console.log(summary(report));
    if (single !== undefined && !json) {
      console.log(`  faults: ${JSON.stringify(report.faultsInjected)}`);
      console.log(`  network: ${JSON.stringify(report.network)}`);
      console.log(`  leader after heal: ${report.leaderElectedAfterHealMs ?? "never"} ms`);
    }
    if (report.violations.length > 0) {
      failed++;
      printFailure(report);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${seeds.length - failed}/${seeds.length} seeds passed in ${seconds} s (wall clock)`);
  process.exit(failed > 0 ? 1 : 0);
}

void main();
