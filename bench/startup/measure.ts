/**
 * One measured start of a single-node `blixard node start` process: spawned with the Node.js
 * running the bench, then polled over HTTP until `/healthz` answers 200 (the API serves) and
 * until `/readyz` answers 200 (the node knows a leader: a single-member cluster elects itself).
 * Each moment is taken when its answer arrives, with the process's CPU seconds so far.
 */
import { request } from "node:http";
import { join } from "node:path";
import { singleNodeStartArgs } from "../../test/cli/helpers.js";
import {
  cpuSeconds,
  freePorts,
  logTail,
  sleep,
  spawnLogged,
  stopGracefully,
} from "../cluster/procs.js";

/** The CLI entry point the node runs by default: this checkout's, over its compiled dist/. */
export const BLIXARD_BIN = join(import.meta.dirname, "..", "..", "bin", "blixard.js");

/** How often the bench asks; short against the times measured, cheap beside a start-up. */
const POLL_MS = 5;
/** A start that has not answered by then is reported as failed. */
const START_DEADLINE_MS = 30_000;

/** What one start took, in milliseconds from spawn and CPU seconds of the node's process. */
export interface StartTiming {
  readonly healthzMs: number;
  readonly healthzCpuS: number;
  readonly leaderMs: number;
  readonly leaderCpuS: number;
}

/** Options of {@link measureStart}. */
export interface MeasureOptions {
  /** The data directory: empty for a first start, a previous run's for a restart. */
  readonly dataDir: string;
  /** Where the node's stdout and stderr go. */
  readonly logPath: string;
  /** Node.js flags before the script (e.g. `--cpu-prof`). */
  readonly nodeFlags?: readonly string[];
  /** The CLI entry point to run (default {@link BLIXARD_BIN}). */
  readonly bin?: string;
  /** The peer and API ports: a restart must use those its data directory was created with. */
  readonly ports: { readonly peer: number; readonly api: number };
}

/** Two free loopback ports for a node's peer and API listeners. */
export async function nodePorts(): Promise<{ peer: number; api: number }> {
  const [peer = 0, api = 0] = await freePorts(2);
  return { peer, api };
}

/**
 * Starts a node on `dataDir`, waits for it to serve and to know its leader, then stops it with
 * SIGTERM (a graceful stop, so a CPU profile is written) and waits for it to exit.
 * @throws Error if the node exits or does not answer within {@link START_DEADLINE_MS}.
 */
export async function measureStart(options: MeasureOptions): Promise<StartTiming> {
  const peer = `127.0.0.1:${options.ports.peer}`;
  const api = `127.0.0.1:${options.ports.api}`;
  const args = [
    ...(options.nodeFlags ?? []),
    options.bin ?? BLIXARD_BIN,
    ...singleNodeStartArgs(options.dataDir, peer, api, ["--cluster-id", "startup-bench"]),
  ];
  const startedAt = performance.now();
  const owned = spawnLogged(process.execPath, args, options.logPath);
  try {
    let health: { ms: number; cpuS: number } | undefined;
    for (;;) {
      if (owned.hasExited()) {
        throw new Error(`the node exited before it was ready:\n${logTail(options.logPath)}`);
      }
      if (performance.now() - startedAt > START_DEADLINE_MS) {
        throw new Error(`the node was not ready after ${START_DEADLINE_MS} ms`);
      }
      const path = health === undefined ? "/healthz" : "/readyz";
      if ((await statusOf(options.ports.api, path)) === 200) {
        const moment = { ms: performance.now() - startedAt, cpuS: cpuSeconds(owned.pid) };
        if (health !== undefined) {
          return {
            healthzMs: health.ms,
            healthzCpuS: health.cpuS,
            leaderMs: moment.ms,
            leaderCpuS: moment.cpuS,
          };
        }
        health = moment;
        // Asked at once: the leader may already be known.
        continue;
      }
      await sleep(POLL_MS);
    }
  } finally {
    await stopGracefully([owned], 10_000);
  }
}

/** The status code of `GET path`, or undefined when nothing answered (not listening yet). */
function statusOf(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

/** Wall time from spawn to exit of `node -e 0`: the floor any Node.js process pays. */
export async function bareNodeMs(logPath: string): Promise<number> {
  const startedAt = performance.now();
  const owned = spawnLogged(process.execPath, ["-e", "0"], logPath);
  await owned.exited;
  return performance.now() - startedAt;
}
