/**
 * The `process` VM driver: runs `spec.command` with `spec.args` (no shell) as a supervised,
 * long-running process (issue 7, item 5). Its stdout and stderr go to `<logDir>/<name>.log`,
 * rotated at a cap, with the supervisor's own lines (`[blixard …] …`) between them. A run that
 * ends by itself is handled by the restart policy; a stop is SIGTERM to its process group, then
 * SIGKILL after the grace period.
 */
import { findParentDeathHelper } from "./parent-death.js";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../../common/clock.js";
import { CancelledError, InvalidArgumentError } from "../../common/errors.js";
import type { VmSpec } from "../../statemachine/orchestrator/types.js";
import { minimalEnv } from "./child-env.js";
import {
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_VM_LOG_MAX_BYTES,
  OUTPUT_DRAIN_TIMEOUT_MS,
} from "./limits.js";
import { spawnGroup, terminateGroup } from "./process-group.js";
import { RotatingLog } from "./rotating-log.js";
import { Supervisor, type Launcher, type LaunchedRun } from "./supervisor.js";
import { within } from "./timing.js";
import {
  checkVmName,
  type VmDriverCommonOptions,
  type VmDriverPort,
  type VmHandle,
  type VmStartRequest,
} from "./vm-driver.js";

/** How the process driver runs VMs. */
export interface ProcessDriverOptions extends VmDriverCommonOptions {
  /** Time for grace periods and restart backoff. */
  readonly clock: Clock;
  /** Where `<name>.log` (and its rotated `<name>.log.1`) go; created when missing. */
  readonly logDir: string;
  /** The working directory of the processes. Default: `logDir`. */
  readonly workDir?: string;
  /** The grace period of a stop that names none. Default {@link DEFAULT_KILL_GRACE_MS}. */
  readonly stopGraceMs?: number;
  /** Bytes of a log file before it is rotated. Default {@link DEFAULT_VM_LOG_MAX_BYTES}. */
  readonly logMaxBytes?: number;
  /** The processes' environment. Default {@link minimalEnv}: the agent's PATH and HOME. */
  readonly baseEnv?: Readonly<Record<string, string>>;
  /** Run the processes as this user (the agent must be root). Default: the agent's own. */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** Runs VMs whose driver is `process`. */
export class ProcessDriver implements VmDriverPort {
  readonly kind = "process" as const;

  constructor(private readonly options: ProcessDriverOptions) {}

  /**
   * Starts supervising `request.spec.command`.
   * @throws InvalidArgumentError for a bad name, another driver's spec or an empty command.
   */
  start(request: VmStartRequest): VmHandle {
    const { name, spec } = request;
    checkVmName(name);
    checkProcessSpec(name, spec);
    const { clock, logDir, registry } = this.options;
    mkdirSync(logDir, { recursive: true, mode: 0o700 });
    const log = new RotatingLog(
      join(logDir, `${name}.log`),
      this.options.logMaxBytes ?? DEFAULT_VM_LOG_MAX_BYTES,
    );
    const note = (line: string): void => log.line(`[blixard ${new Date().toISOString()}] ${line}`);
    const cwd = this.options.workDir ?? logDir;
    const env = this.options.baseEnv ?? minimalEnv();
    const registryKey = `vm-${name}`;

    const launcher: Launcher = {
      note,
      close: () => log.finish(),
      launch: async (signal): Promise<LaunchedRun> => {
        if (signal.aborted) throw new CancelledError(`VM ${name} was stopped before it started`);
        const user = this.options.user;
        // Bound to this node: a VM that outlived a killed node would run beside its copy elsewhere.
        const parentDeathHelper = await findParentDeathHelper();
        const proc = await spawnGroup(spec.command, spec.args, {
          cwd,
          env,
          output: "pipe",
          ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
          ...(parentDeathHelper === null ? {} : { parentDeathHelper }),
        });
        proc.stdout?.pipe(log, { end: false });
        proc.stderr?.pipe(log, { end: false });
        const recorded = registry
          ?.record(registryKey, proc.pid, spec.command)
          .catch((error: unknown) => note(`could not record pid ${proc.pid}: ${String(error)}`));
        const exited = proc.exited.then(async (status) => {
          // Its output first, then the supervisor's line about the exit.
          if (!(await within(clock, proc.closed, OUTPUT_DRAIN_TIMEOUT_MS)).inTime) {
            proc.stdout?.destroy();
            proc.stderr?.destroy();
          }
          await recorded;
          await registry?.forget(registryKey).catch(() => undefined);
          return status;
        });
        return {
          pid: proc.pid,
          exited,
          stop: async (graceMs) => {
            const method = await terminateGroup(proc, clock, graceMs);
            await exited;
            return method;
          },
        };
      },
    };
    const supervisor = new Supervisor({
      name,
      policy: spec.restart,
      clock,
      launcher,
      onChange: request.onChange,
      previousRestarts: request.previousRestarts ?? 0,
      defaultGraceMs: this.options.stopGraceMs ?? DEFAULT_KILL_GRACE_MS,
    });
    return supervisor;
  }
}

function checkProcessSpec(name: string, spec: VmSpec): void {
  if (spec.driver !== "process") {
    throw new InvalidArgumentError(
      `VM ${name} uses the ${spec.driver} driver; the process driver cannot run it`,
    );
  }
  if (spec.command === "") {
    throw new InvalidArgumentError(`VM ${name} has no command; the process driver needs one`);
  }
}
