/**
 * Helpers for CLI tests: build `dist/` once per change of `src/` (serialised across test files by
 * a lock directory), run `bin/blixard.js` as a child process, poll with deadlines.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The CLI entry point. */
export const BIN = join(ROOT, "bin", "blixard.js");
/**
 * The working directory of every CLI the tests spawn: an empty one, so that a developer's
 * `.blixard/dev/management.token` in the checkout (left by `blixard dev`) is never picked up as
 * the tests' credential.
 */
export const CLI_CWD = mkdtempSync(join(tmpdir(), "blixard-cli-cwd-"));

const STAMP = join(ROOT, "dist", ".cli-test-build-stamp");
const LOCK = join(ROOT, "dist", ".cli-test-build-lock");

/** A lock older than this was left by a killed run. */
const STALE_LOCK_MS = 150_000;

/** When the build lock was taken (now, if it is gone). */
function lockAgeBaseMs(): number {
  try {
    return statSync(LOCK).mtimeMs;
  } catch {
    return Date.now();
  }
}

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtimeMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Compiles `src/` into `dist/` unless it was compiled after the newest source change. Type errors
 * elsewhere (someone's work in progress) do not stop the emit; only a missing CLI does.
 */
export async function ensureBuilt(): Promise<void> {
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  await until(
    () => {
      try {
        mkdirSync(LOCK);
        return true;
      } catch {
        // A run killed mid-build leaves its lock behind; no build takes anywhere near this long.
        if (Date.now() - lockAgeBaseMs() > STALE_LOCK_MS)
          rmSync(LOCK, { recursive: true, force: true });
        return undefined;
      }
    },
    "the build lock",
    170_000,
  );
  try {
    if (existsSync(STAMP) && statSync(STAMP).mtimeMs > newestMtimeMs(join(ROOT, "src"))) return;
    const started = new Date();
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) {
      throw new Error(`build failed:\n${result.stdout}${result.stderr}`);
    }
    writeFileSync(STAMP, "");
    utimesSync(STAMP, started, started);
  } finally {
    rmdirSync(LOCK);
  }
}

/** The outcome of one CLI run. */
export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `blixard ...args` to completion (30 s at most). */
export function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: CLI_CWD,
      env: { ...process.env, BLIXARD_ENDPOINTS: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * The arguments of `blixard node start` for a one-member cluster of node 1 on `peer` and `api`
 * (`host:port`), plain HTTP (`--insecure`): it elects itself. `extra` goes last.
 */
export function singleNodeStartArgs(
  dataDir: string,
  peer: string,
  api: string,
  extra: readonly string[] = [],
): string[] {
  return [
    "node",
    "start",
    "--data-dir",
    dataDir,
    "--id",
    "1",
    "--peer-listen",
    peer,
    "--api-listen",
    api,
    "--initial-members",
    `1=${peer}@http://${api}`,
    "--insecure",
    ...extra,
  ];
}

/** Starts `blixard ...args` in the background (Node run with `nodeFlags`), collecting its output. */
export function start(
  args: readonly string[],
  nodeFlags: readonly string[] = [],
): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [...nodeFlags, BIN, ...args], {
    cwd: CLI_CWD,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

/** Polls `condition` every 50 ms until it returns a value other than undefined, or throws. */
export async function until<T>(
  condition: () => T | undefined | Promise<T | undefined>,
  what: string,
  deadlineMs = 20_000,
): Promise<T> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined) return value;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a process with this pid exists. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Resolves with the exit code once `exited` settles, or throws after `deadlineMs`. */
export async function exitWithin(
  exited: Promise<number | null>,
  deadlineMs: number,
): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no exit within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
