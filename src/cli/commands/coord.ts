/**
 * `blixard lock`, `blixard elect` and `blixard lease`: the coordination recipes of the SDK
 * (`client/lock.ts`) from the shell.
 */
import { spawn } from "node:child_process";
import { Command } from "commander";
import { campaign, lock, observeLeader } from "../../client/index.js";
import { InvalidArgumentError, UnavailableError } from "../../common/errors.js";
import { ExitStatus } from "../exit-status.js";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

/** The environment variable that carries the fencing token to `blixard lock`'s command. */
export const LOCK_TOKEN_ENV = "BLIXARD_LOCK_TOKEN";
/** The environment variable that carries the lock's key to `blixard lock`'s command. */
export const LOCK_KEY_ENV = "BLIXARD_LOCK_KEY";
const DEFAULT_TTL_MS = 10_000;

interface LineOptions extends ClientOptions {
  readonly ttlMs: number;
}

interface ElectOptions extends LineOptions {
  readonly observe?: boolean;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** Registers `lock`, `elect` and `lease` on `program`. */
export function registerCoordinationCommands(program: Command): void {
  withClientOptions(
    program
      .command("lock")
      .description(
        `run CMD while holding lock NAME (FIFO); CMD gets the fencing token in $${LOCK_TOKEN_ENV}\n` +
          "and the lock's key in $" +
          `${LOCK_KEY_ENV}; exits with CMD's exit code. If the lock is lost (its lease\n` +
          "expired), CMD gets SIGTERM and the command fails with UNAVAILABLE",
      ),
  )
    .argument("<name>")
    .argument("<cmd...>", "the command and its arguments (after --)")
    .option("--ttl-ms <ms>", "the lock's lease TTL", parsePositiveInt, DEFAULT_TTL_MS)
    .action(async (name: string, argv: string[], options: LineOptions) => {
      const [command, ...args] = argv;
      if (command === undefined) throw new InvalidArgumentError("give a command to run after --");
      const client = clientFrom(options);
      const held = await lock(client, name, { ttlMs: options.ttlMs });
      let lost = false;
      try {
        const child = spawn(command, args, {
          stdio: "inherit",
          env: { ...process.env, [LOCK_TOKEN_ENV]: String(held.token), [LOCK_KEY_ENV]: held.key },
        });
        void held.lease.lost.then(() => {
          lost = true;
          child.kill("SIGTERM");
        });
        const code = await new Promise<number>((resolve, reject) => {
          child.once("error", reject);
          child.once("exit", (exitCode, signal) =>
            resolve(exitCode ?? (signal === null ? 1 : 128)),
          );
        });
        if (lost) throw new UnavailableError(`lost lock ${name}: its lease expired`);
        if (code !== 0) throw new ExitStatus(code);
      } finally {
        await held.release().catch(() => undefined);
      }
    });

  withClientOptions(
    program
      .command("elect")
      .description(
        "campaign in election NAME with VALUE; print when elected and lead until SIGINT/SIGTERM\n" +
          "(then resign). With --observe NAME: print the leader's value at every change",
      ),
  )
    .argument("<name>")
    .argument("[value]")
    .option("--observe", "follow the leader instead of campaigning")
    .option("--ttl-ms <ms>", "the candidate's lease TTL", parsePositiveInt, DEFAULT_TTL_MS)
    .action(async (name: string, value: string | undefined, options: ElectOptions) => {
      const client = clientFrom(options);
      const stop = new AbortController();
      void untilSignal().then(() => stop.abort());
      if (options.observe === true) {
        try {
          for await (const leader of observeLeader(client, name, { signal: stop.signal })) {
            if (options.json === true) {
              printJson(
                leader === null ? null : { value: leader.valueText, token: leader.createRevision },
              );
            } else
              process.stdout.write(
                `${leader === null ? "(no leader)" : (leader.valueText ?? "")}\n`,
              );
          }
        } catch (error) {
          if (!stop.signal.aborted) throw error;
        }
        return;
      }
      if (value === undefined) throw new InvalidArgumentError("give a VALUE to campaign with");
      const held = await campaign(client, name, value, {
        ttlMs: options.ttlMs,
        signal: stop.signal,
      });
      if (options.json === true) printJson({ elected: true, token: held.token, key: held.key });
      else process.stdout.write(`elected (token ${held.token})\n`);
      const lost = await Promise.race([
        held.lease.lost.then(() => true),
        new Promise<boolean>((resolve) =>
          stop.signal.addEventListener("abort", () => resolve(false)),
        ),
      ]);
      await held.release().catch(() => undefined);
      if (lost) throw new UnavailableError(`lost leadership of ${name}: its lease expired`);
    });

  const lease = program.command("lease").description("grant, inspect, renew and revoke leases");
  withClientOptions(lease.command("grant").description("grant a lease of TTL_MS; print its id"))
    .argument("<ttlMs>", "1000 ms to a day", parsePositiveInt)
    .action(async (ttlMs: number, options: ClientOptions) => {
      const granted = await clientFrom(options).coord.grant(ttlMs);
      if (options.json === true) printJson(granted);
      else process.stdout.write(`${granted.id}\n`);
    });
  withClientOptions(lease.command("ttl").description("print what is left of lease ID"))
    .argument("<id>", "lease id", parsePositiveInt)
    .option("--keys", "list its keys")
    .action(async (id: number, options: ClientOptions & { keys?: boolean }) => {
      const status = await clientFrom(options).coord.timeToLive(id, {
        keys: options.keys === true,
      });
      if (options.json === true) printJson(status);
      else {
        process.stdout.write(`lease ${id}: ${status.remainingMs} ms left of ${status.ttlMs} ms\n`);
        for (const key of status.keys ?? []) process.stdout.write(`${key}\n`);
      }
    });
  withClientOptions(lease.command("keepalive").description("renew lease ID once"))
    .argument("<id>", "lease id", parsePositiveInt)
    .action(async (id: number, options: ClientOptions) => {
      const [renewed] = await clientFrom(options).coord.keepAlive([id]);
      if (renewed === undefined || renewed.ttlMs < 0) {
        throw new UnavailableError(`lease ${id} is gone (expired or revoked)`);
      }
      if (options.json === true) printJson(renewed);
      else process.stdout.write(`renewed for ${renewed.ttlMs} ms\n`);
    });
  withClientOptions(lease.command("revoke").description("revoke lease ID, deleting its keys"))
    .argument("<id>", "lease id", parsePositiveInt)
    .action(async (id: number, options: ClientOptions) => {
      const result = await clientFrom(options).coord.revoke(id);
      if (options.json === true) printJson(result);
      else process.stdout.write(`revoked (${result.deletedKeys} keys deleted)\n`);
    });
}
