/**
 * `npm run chaos -- --seconds N --faults kill,stop,… --seed S [--nodes 3] [--clients 10]` and
 * `npm run chaos:soak -- --minutes N`: a fault run on real processes (see README, "Fault
 * testing"). Needs root.
 *
 * Two processes: the outer one (this file, in the machine's namespace) removes what crashed
 * runs left, creates the network and disks, runs the inner one inside the client namespace
 * (`nsenter --net`: the clients and probes must reach the nodes' private addresses) and removes
 * everything again on every exit path — the inner one's crash, SIGINT, SIGTERM. The inner one
 * runs the nodes, clients and faults and writes the result as JSON.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import {
  copyBuild,
  createNetwork,
  isRoot,
  missingTools,
  removeLeftovers,
  removeRun,
  RunNames,
} from "./host.js";
import { runChaos, type ChaosResult } from "./run.js";
import { FAULT_KINDS, parseFaults } from "./schedule.js";

interface Options {
  seconds?: string;
  minutes?: string;
  faults: string;
  seed?: string;
  nodes: string;
  clients: string;
  keys: string;
  diskMib: string;
  json?: string;
  history?: string;
  logs?: string;
  inner?: string;
}

function parse(argv: readonly string[]): Options {
  const program = new Command()
    .name("chaos")
    .option("--seconds <n>", "length of the run in seconds")
    .option("--minutes <n>", "length of the run in minutes (soak)")
    .option("--faults <kinds>", `comma-separated: ${FAULT_KINDS.join(",")}`, FAULT_KINDS.join(","))
    .option("--seed <n>", "seed of the fault schedule (default: random, printed)")
    .option("--nodes <n>", "cluster size", "3")
    .option("--clients <n>", "concurrent clients", "10")
    .option("--keys <n>", "keys the clients share", "8")
    .option("--disk-mib <n>", "size of each node's file system", "128")
    .option("--json <file>", "write the result as JSON to this file")
    .option("--history <file>", "write the recorded history as JSON to this file")
    .option("--logs <dir>", "write every node's kept output to this directory")
    .option("--inner <owner>", "(internal) run inside the client namespace of run <owner>");
  program.parse([...argv]);
  return program.opts<Options>();
}

function report(result: ChaosResult): string {
  const lines = [
    `chaos run: seed ${result.seed}, ${Math.round(result.durationMs / 1000)} s, verdict ${result.ok ? "PASS" : "FAIL"}`,
    `operations: ${result.operations.ok} ok, ${result.operations.failed} failed, ${result.operations.unknown} unknown`,
    `faults: ${Object.entries(result.faultsByKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ")}`,
    `linearizable: ${result.linearizable}; lost acknowledged writes: ${result.lostWrites}`,
    `worst heal-to-replication: ${result.worstHealToReplicationMs ?? "-"} ms; worst leaderless period: ${result.worstLeaderlessMs} ms (in a step: ${result.worstLeaderlessConnectedMs} ms without packet loss, ${result.worstLeaderlessLossyMs} ms under loss)`,
  ];
  if (result.notes.length > 0) lines.push("notes:", ...result.notes.map((n) => `  ${n}`));
  if (!result.ok) {
    lines.push(`replay: npm run chaos -- --seed ${result.seed} (same schedule)`);
    lines.push("schedule run:", ...result.steps.map((s) => `  ${s}`));
    if (result.findings.length > 0)
      lines.push("findings:", ...result.findings.map((f) => `  ${f}`));
    if (result.explanation !== undefined) lines.push("linearizability:", result.explanation);
    if (result.lostDetails.length > 0)
      lines.push("lost writes:", ...result.lostDetails.map((l) => `  ${l}`));
    lines.push("node logs (tails):", result.logTails);
  }
  return lines.join("\n");
}

async function inner(options: Options): Promise<number> {
  const names = new RunNames(Number(options.inner));
  const seconds =
    options.minutes !== undefined ? Number(options.minutes) * 60 : Number(options.seconds ?? 60);
  const result = await runChaos({
    names,
    seed: Number(options.seed),
    seconds,
    faults: parseFaults(options.faults),
    nodes: Number(options.nodes),
    clients: Number(options.clients),
    keys: Number(options.keys),
    diskMiB: Number(options.diskMib),
    logsDir: options.logs,
    say: (line) => process.stderr.write(`${line}\n`),
  });
  writeFileSync(join(names.root, "result.json"), JSON.stringify(result));
  return 0;
}

async function outer(options: Options, argv: readonly string[]): Promise<number> {
  if (!isRoot()) {
    process.stderr.write("chaos: needs root (network namespaces, nftables, loop mounts)\n");
    return 2;
  }
  const missing = missingTools();
  if (missing.length > 0) {
    process.stderr.write(`chaos: missing tools: ${missing.join(", ")} (see .ci/run)\n`);
    return 2;
  }
  parseFaults(options.faults);
  const seed =
    options.seed !== undefined ? Number(options.seed) : Math.floor(Math.random() * 2 ** 31);
  const removed = removeLeftovers();
  if (removed.length > 0)
    process.stderr.write(`chaos: removed leftovers of runs ${removed.join(", ")}\n`);
  const names = new RunNames(process.pid);
  const cleanup = (): void => removeRun(process.pid);
  const onSignal = (signal: NodeJS.Signals): void => {
    cleanup();
    process.kill(process.pid, signal);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    mkdirSync(names.root, { recursive: true });
    copyBuild(names, join(import.meta.dirname, "..", ".."));
    const slots = Number(options.nodes) + 1;
    createNetwork(names, slots);
    process.stderr.write(`chaos: seed ${seed}\n`);
    const child = spawn(
      "nsenter",
      [
        `--net=/run/netns/${names.clientNs}`,
        "--",
        process.execPath,
        "--import",
        "tsx",
        import.meta.filename,
        ...argv,
        "--seed",
        String(seed),
        "--inner",
        String(process.pid),
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    const code = await new Promise<number>((resolve) => child.once("exit", (c) => resolve(c ?? 1)));
    let result: ChaosResult;
    try {
      result = JSON.parse(readFileSync(join(names.root, "result.json"), "utf8")) as ChaosResult;
    } catch {
      process.stderr.write(
        `chaos: the run crashed (exit ${code}) before writing its result; seed ${seed}\n`,
      );
      return 1;
    }
    const { history, ...summary } = result;
    if (options.history !== undefined)
      writeFileSync(options.history, JSON.stringify(history ?? []));
    if (options.json !== undefined) writeFileSync(options.json, JSON.stringify(summary, null, 2));
    process.stdout.write(`${report(result)}\n`);
    return result.ok ? 0 : 1;
  } finally {
    cleanup();
  }
}

const argv = process.argv.slice(2);
const options = parse(process.argv);
const forwarded = argv.filter(
  (_, i) =>
    !["--seed", "--inner", "--json", "--history"].includes(argv[i - 1] ?? "") &&
    !["--seed", "--inner", "--json", "--history"].includes(argv[i] ?? ""),
);
process.exitCode =
  options.inner !== undefined ? await inner(options) : await outer(options, forwarded);
