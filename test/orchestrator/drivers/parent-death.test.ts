/**
 * A group process bound to its parent (`parent-death.ts`) dies when that parent is SIGKILLed,
 * held or not; an unbound one outlives it (what happened to every QEMU of a killed node before);
 * the guard runs nothing when the parent it was meant for is not its parent; and a start through
 * the guard or the hold shell refuses a missing or non-executable command as a direct one does.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  dyingWithParent,
  findParentDeathHelper,
  PARENT_GONE_EXIT_CODE,
} from "../../../src/orchestrator/drivers/parent-death.js";
import { signalGroup, spawnGroup } from "../../../src/orchestrator/drivers/process-group.js";
import { InvalidArgumentError, NotFoundError } from "../../../src/common/errors.js";
import { childScriptCommand } from "../../fixtures/child-script.js";
import { isAlive, waitFor } from "./helpers.js";

const CHILD_SOURCE = fileURLToPath(new URL("./parent-death-child.ts", import.meta.url));
const helper = await findParentDeathHelper();
/** Where the helper should be: the tests below fail (not skip) without it. */
const helperPath = helper ?? "/usr/bin/setpriv";

let workDir: string;
let childCommand: string[];
/** Group processes a test started, killed after it whatever happened. */
const started: number[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "blixard-parent-death-"));
  // Bundled: a stand-in node that starts in a fraction of tsx's time.
  childCommand = await childScriptCommand(CHILD_SOURCE, workDir);
});

afterEach(() => {
  for (const pid of started.splice(0)) signalGroup(pid, "SIGKILL");
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Starts a stand-in node that starts `sleep`; resolves with both pids once sleep runs. */
async function standIn(
  boundTo: string | null,
  mode: "hold" | "nohold",
): Promise<{ nodePid: number; sleepPid: number; killNode: () => Promise<void> }> {
  const marker = `${1000 + started.length}.${process.pid}`;
  const node = spawn(process.execPath, [...childCommand, boundTo ?? "none", marker, mode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => node.once("exit", () => resolve()));
  let output = "";
  node.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(() => output.includes("\n") || node.exitCode !== null, "the stand-in's pid line");
  const sleepPid = Number(output.trim());
  expect(sleepPid, `the stand-in printed ${JSON.stringify(output)}`).toBeGreaterThan(1);
  started.push(sleepPid);
  // Running sleep itself (not the guard shell or setpriv any more): its command line says so.
  await waitFor(
    () => readCommand(sleepPid)[0] === "sleep",
    `pid ${sleepPid} to be sleep (is ${JSON.stringify(readCommand(sleepPid))})`,
  );
  return {
    nodePid: node.pid!,
    sleepPid,
    killNode: async () => {
      node.kill("SIGKILL");
      await exited;
    },
  };
}

function readCommand(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

describe("a group process bound to its parent (setpriv)", () => {
  it("finds setpriv (util-linux) on PATH", () => {
    expect(
      helper,
      "install util-linux: without setpriv a killed node's QEMU runs on",
    ).not.toBeNull();
  });

  it("dies when its parent is SIGKILLed", async () => {
    const { sleepPid, killNode } = await standIn(helperPath, "nohold");
    expect(isAlive(sleepPid)).toBe(true);
    await killNode();
    await waitFor(() => !isAlive(sleepPid), `pid ${sleepPid} to die with its parent`, 5000);
  });

  it("dies with its parent after a held start (the cgroup path)", async () => {
    const { sleepPid, killNode } = await standIn(helperPath, "hold");
    await killNode();
    await waitFor(() => !isAlive(sleepPid), `pid ${sleepPid} to die with its parent`, 5000);
  });

  it("outlives its parent when not bound (the registry reaps it at the next start)", async () => {
    const { sleepPid, killNode } = await standIn(null, "nohold");
    await killNode();
    // Nothing signals it: it runs on, adopted by init, until someone kills it.
    expect(isAlive(sleepPid)).toBe(true);
  });

  it("runs nothing when the pid it is bound to is not its parent", async () => {
    const marker = join(workDir, "ran");
    const [file, argv] = dyingWithParent(helperPath, process.pid + 1_000_000, 'exec "$@"', [
      "touch",
      marker,
    ]);
    const result = spawnSync(file, argv, { encoding: "utf8" });
    expect(result.status, result.stderr).toBe(PARENT_GONE_EXIT_CODE);
    expect(existsSync(marker)).toBe(false);
    // The same line bound to the real parent runs the command.
    const [ownFile, ownArgv] = dyingWithParent(helperPath, process.pid, 'exec "$@"', [
      "touch",
      marker,
    ]);
    const ran = spawnSync(ownFile, ownArgv, { encoding: "utf8" });
    expect(ran.status, ran.stderr).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it("refuses a missing or non-executable command as a direct start does, not as a shell's exit 127", async () => {
    const options = { cwd: workDir, env: { PATH: "/usr/bin:/bin" }, output: "ignore" as const };
    const starts = [
      {},
      { parentDeathHelper: helperPath },
      { hold: true },
      { hold: true, parentDeathHelper: helperPath },
    ];
    const nonExecutable = join(workDir, "not-executable");
    writeFileSync(nonExecutable, "#!/bin/sh\necho no\n", { mode: 0o644 });
    for (const start of starts) {
      const how = JSON.stringify(start);
      const missing = await spawnGroup("no-such-command-anywhere", [], { ...options, ...start })
        .then((p) => started.push(p.pid))
        .catch((e: unknown) => e);
      expect(missing, how).toBeInstanceOf(NotFoundError);
      expect((missing as Error).message, how).toContain("ENOENT");
      // A relative path is looked up from the working directory, as the kernel would.
      const relative = await spawnGroup("./not-executable", [], { ...options, ...start })
        .then((p) => started.push(p.pid))
        .catch((e: unknown) => e);
      expect(relative, how).toBeInstanceOf(InvalidArgumentError);
      expect((relative as Error).message, how).toContain("EACCES");
    }
  });
});
