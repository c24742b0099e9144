/**
 * The CLI's help text: descriptions wrap once (to the terminal), each option's environment
 * variable is named once, and every default shown comes from the constant the code uses.
 */
import { DEFAULT_MIGRATE_WAIT_MS } from "../../src/cli/commands/vm-migrate.js";
import { HEARTBEAT_FRACTION_OF_DEAD_AFTER } from "../../src/orchestrator/agent/remote/heartbeat-loop.js";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { DEFAULT_AUDIT_LOG_MAX_BYTES } from "../../src/api/audit/audit-log.js";
import {
  DEFAULT_RESTART_POLICY,
  DEFAULT_VM_EXEC_TIMEOUT_MS,
  DEFAULT_VM_HEALTH,
  DEFAULT_TASK_PAGE,
  DEFAULT_TASK_RESOURCES,
  TASK_SPEC_DEFAULTS,
  VM_SPEC_DEFAULTS,
} from "../../src/api/schema/orchestrator.js";
import { DEFAULT_MAX_CONNECTIONS } from "../../src/api/server-defaults.js";
import { DEFAULT_TIMEOUT_MS } from "../../src/client/index.js";
import { DEFAULT_ENDPOINT, DEV_CA_PATH } from "../../src/cli/commands/client-options.js";
import {
  DEFAULT_PROMOTE_WAIT_MS,
  MEMBER_STATUS_TIMEOUT_MS,
} from "../../src/cli/commands/cluster.js";
import { DEFAULT_HEARTBEAT_TICKS } from "../../src/api/heartbeat-ticks.js";
import { DEFAULT_ELECTION_TICKS, DEFAULT_TICK_MS } from "../../src/cli/commands/node.js";
import { DEV_DATA_DIR, DEV_TOKEN_FILE } from "../../src/cli/commands/token-lookup.js";
import { DEFAULT_CLUSTER_ID } from "../../src/cli/node/node-config.js";
import { DEFAULT_VM_READY_TIMEOUT_MS } from "../../src/cli/node/vm-settings.js";
import { DEFAULT_TASK_USER } from "../../src/orchestrator/confine/task-user.js";
import { DEFAULT_VM_LOG_TAIL_LINES } from "../../src/orchestrator/drivers/vm-log-reader.js";
import { DEFAULT_WORKER_DEAD_AFTER_MS } from "../../src/orchestrator/liveness.js";
import { DEFAULT_CA_VALIDITY_DAYS, DEFAULT_CERT_VALIDITY_DAYS } from "../../src/security/issue.js";
import { buildProgram, reflow } from "../../src/cli/main.js";

/** Every command of the tree, depth first. */
function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap((c) => allCommands(c))];
}

describe("CLI help", () => {
  it("reflows hard-wrapped paragraphs and keeps indented example lines", () => {
    expect(reflow("one line\nwrapped here.\n\n  blixard x\n  blixard y\nlast")).toBe(
      "one line wrapped here.\n\n  blixard x\n  blixard y last",
    );
  });

  it("wraps no description line mid-sentence at 80 columns", async () => {
    for (const command of allCommands(await buildProgram())) {
      command.configureOutput({ getOutHelpWidth: () => 80 });
      const help = command.helpInformation();
      const description = help.split("\n\nOptions:")[0] ?? "";
      for (const line of description.split("\n")) {
        expect(line.length, `${command.name()}: ${line}`).toBeLessThanOrEqual(80);
      }
      // A hard-wrapped source line re-wrapped leaves a short orphan line ("bootstrap a").
      const lines = description.split("\n").slice(2);
      for (let i = 0; i + 1 < lines.length; i++) {
        const line = lines[i]!;
        const next = lines[i + 1]!;
        if (line.trim() === "" || next.trim() === "" || next.startsWith(" ")) continue;
        expect(
          line.length + 1 + (next.split(" ")[0]?.length ?? 0),
          `${command.name()}: "${line}" could have held the next word`,
        ).toBeGreaterThan(80);
      }
    }
  });

  it("shows every default from the constant the code uses, and no default written by hand", async () => {
    // Defaults applied by the code after parsing (or by the server when a flag is absent): what
    // each option's help must show, from the same constants. Keyed by "command path --flag".
    const applied: Record<string, string> = {
      "dev --api-base-port": "--base-port + 1000",
      "node start --cluster-id": DEFAULT_CLUSTER_ID,
      "node start --tick-ms": String(DEFAULT_TICK_MS),
      "node start --election-ticks": String(DEFAULT_ELECTION_TICKS),
      "node start --heartbeat-ticks": `${DEFAULT_HEARTBEAT_TICKS}, or at most 40% of --election-ticks`,
      "node start --cpu": "detected",
      "node start --memory": "detected",
      "node start --disk": "free space under --data-dir",
      "node start --worker-dead-after-ms": String(DEFAULT_WORKER_DEAD_AFTER_MS),
      "node start --tls-ca": "<data-dir>/tls/ca.pem",
      "node start --tls-cert": "<data-dir>/tls/node-<id>.pem",
      "node start --tls-key": "<data-dir>/tls/node-<id>-key.pem",
      "node start --api-tls-cert": "the node's",
      "node start --enable-raw-exec": "off",
      "node start --audit-log-max-bytes": String(DEFAULT_AUDIT_LOG_MAX_BYTES),
      "node start --api-max-connections": String(DEFAULT_MAX_CONNECTIONS),
      "node start --task-user": DEFAULT_TASK_USER,
      "node start --vm-ready-timeout-ms": String(DEFAULT_VM_READY_TIMEOUT_MS),
      "node start --no-worker": "a worker too",
      "agent start --cluster-id": DEFAULT_CLUSTER_ID,
      "agent start --heartbeat-interval-ms": `${HEARTBEAT_FRACTION_OF_DEAD_AFTER} × --worker-dead-after-ms`,
      "agent start --disconnect-grace-ms": "--worker-dead-after-ms",
      "agent start --advertise-host": "the address this machine uses toward the first of --servers",
      "agent start --cpu": "detected",
      "agent start --memory": "detected",
      "agent start --disk": "free space under --data-dir",
      "agent start --worker-dead-after-ms": String(DEFAULT_WORKER_DEAD_AFTER_MS),
      "agent start --tls-ca": "<data-dir>/tls/ca.pem",
      "agent start --tls-cert": "<data-dir>/tls/node-<id>.pem",
      "agent start --tls-key": "<data-dir>/tls/node-<id>-key.pem",
      "agent start --enable-raw-exec": "off",
      "agent start --task-user": DEFAULT_TASK_USER,
      "agent start --vm-ready-timeout-ms": String(DEFAULT_VM_READY_TIMEOUT_MS),
      "task submit --cpu": String(DEFAULT_TASK_RESOURCES.cpuMillis / 1000),
      "task submit --memory": String(DEFAULT_TASK_RESOURCES.memoryMb),
      "task submit --disk": String(DEFAULT_TASK_RESOURCES.diskGb),
      "task submit --cwd": "the agent's",
      "task submit --kill-after": `${TASK_SPEC_DEFAULTS.timeoutMs}: never`,
      "task submit --max-attempts": String(TASK_SPEC_DEFAULTS.maxAttempts),
      "task list --limit": String(DEFAULT_TASK_PAGE),
      "vm create --vcpus": String(VM_SPEC_DEFAULTS.vcpus),
      "vm create --memory": String(VM_SPEC_DEFAULTS.memoryMb),
      "vm create --disk": String(VM_SPEC_DEFAULTS.diskGb),
      "vm create --restart": DEFAULT_RESTART_POLICY.mode,
      "vm create --max-restarts": String(DEFAULT_RESTART_POLICY.maxRestarts),
      "vm create --backoff-ms": String(DEFAULT_RESTART_POLICY.backoffMs),
      "vm create --health-interval-ms": String(DEFAULT_VM_HEALTH.intervalMs),
      "vm create --health-timeout-ms": String(DEFAULT_VM_HEALTH.timeoutMs),
      "vm create --health-failures": String(DEFAULT_VM_HEALTH.failureThreshold),
      "vm exec --command-timeout-ms": String(DEFAULT_VM_EXEC_TIMEOUT_MS),
      "vm migrate --timeout-ms": String(DEFAULT_MIGRATE_WAIT_MS),
      "vm logs --tail": String(DEFAULT_VM_LOG_TAIL_LINES),
      "tls init --days": String(DEFAULT_CA_VALIDITY_DAYS),
      "tls issue --days": String(DEFAULT_CERT_VALIDITY_DAYS),
      "tls issue --out": "--dir",
      "image build --kernel-version": "the newest",
      "events --topic": "all",
      "events --from": "now",
      "kv watch --from-revision": "now",
      "operator snapshot restore --cluster-id": "the backup's",
      "cluster promote --timeout": String(DEFAULT_PROMOTE_WAIT_MS),
      "cluster replace --timeout": String(DEFAULT_PROMOTE_WAIT_MS),
      "cluster status --timeout": `${DEFAULT_TIMEOUT_MS}; each member's answer ${MEMBER_STATUS_TIMEOUT_MS}`,
      "cluster members --timeout": `${DEFAULT_TIMEOUT_MS}; the leader's answer ${MEMBER_STATUS_TIMEOUT_MS}`,
      "task wait --timeout": "none: as long as the task takes",
    };
    // The shared client options, wherever no entry above says otherwise.
    const shared: Record<string, string> = {
      "--endpoints": DEFAULT_ENDPOINT,
      "--timeout": String(DEFAULT_TIMEOUT_MS),
      "--ca": `${DEV_CA_PATH} if present`,
      "--token-file": `${DEV_DATA_DIR}/${DEV_TOKEN_FILE} if present`,
    };
    const seen = new Set<string>();
    let checked = 0;
    const walk = (command: Command, path: string[]): void => {
      const help = command.helpInformation();
      for (const option of command.options) {
        const key = `${[...path].join(" ")} ${option.long ?? option.flags}`;
        expect(option.description, `${key}: a default written by hand`).not.toMatch(/default/i);
        const shown = option.defaultValueDescription;
        if (option.defaultValue !== undefined) {
          // Commander applies it: the command gets exactly this value. The help shows it.
          const value = Array.isArray(option.defaultValue)
            ? option.defaultValue.join(",")
            : String(option.defaultValue);
          if (shown !== undefined) expect(shown.startsWith(value), key).toBe(true);
          if (!(option.isBoolean() && option.defaultValue === false)) {
            expect(help.replace(/\s+/g, " "), key).toContain(
              `default: ${shown ?? JSON.stringify(option.defaultValue)}`,
            );
          }
          checked++;
        } else if (shown !== undefined) {
          const expected = applied[key] ?? shared[option.long ?? ""];
          expect(expected, `${key} shows default "${shown}" that no constant backs`).toBeDefined();
          expect(shown, key).toBe(expected);
          // Commander wraps long help lines: compare with the help's whitespace folded.
          expect(help.replace(/\s+/g, " "), key).toContain(`default: ${shown}`);
          seen.add(key);
          checked++;
        }
      }
      for (const sub of command.commands) walk(sub, [...path, sub.name()]);
    };
    walk(await buildProgram(), []);
    expect(Object.keys(applied).filter((key) => !seen.has(key))).toEqual([]);
    expect(checked).toBeGreaterThan(200);
  });

  it("gives each --timeout the default the command really uses", async () => {
    const cluster = (await buildProgram()).commands.find((c) => c.name() === "cluster")!;
    const task = (await buildProgram()).commands.find((c) => c.name() === "task")!;
    const timeoutHelp = (c: Command) =>
      `(default ${c.options.find((o) => o.long === "--timeout")?.defaultValueDescription ?? ""})`;
    expect(timeoutHelp(cluster.commands.find((c) => c.name() === "promote")!)).toContain(
      `(default ${DEFAULT_PROMOTE_WAIT_MS})`,
    );
    expect(timeoutHelp(task.commands.find((c) => c.name() === "wait")!)).toContain("(default none");
    expect(timeoutHelp(task.commands.find((c) => c.name() === "cancel")!)).toContain(
      `(default ${DEFAULT_TIMEOUT_MS})`,
    );
  });

  it("names each option's environment variable once", async () => {
    const help = (await buildProgram()).commands
      .find((c) => c.name() === "node")!
      .commands.find((c) => c.name() === "start")!
      .helpInformation();
    expect(help).not.toContain("[env ");
    expect(help.match(/BLIXARD_DATA_DIR/g)).toHaveLength(1);
  });
});
