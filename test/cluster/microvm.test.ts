/**
 * A real microVM through a real node: `node start --vm-image-dir` with the Blixard guest built
 * there; a qemu VM is `booting` until its guest announces readiness, then `running` (or
 * `unhealthy` while its health check fails); `vm exec` runs commands through the guest agent from
 * any node; a VM whose
 * kernel is outside the image directory fails with the reason; `kvm` is advertised only if the
 * node booted the guest under KVM at start. Needs QEMU, the Debian kernel and busybox-static
 * (BLIXARD_REQUIRE_QEMU=1 makes their absence a failure).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { BlixardClient } from "../../src/client/index.js";
import { freePorts } from "../../src/cli/dev/ports.js";
import { DEFAULT_KERNEL_CMDLINE } from "../../src/orchestrator/drivers/qemu-args.js";
import type { GuestImage } from "../orchestrator/drivers/guest-image.js";
import { ProcessCluster, until } from "./process-cluster.js";
import {
  BOOT_DEADLINE_MS,
  QEMU_AVAILABLE,
  requireQemuWhenAsked,
  useQemuCluster,
} from "./qemu-cluster.js";

let cluster: ProcessCluster;
let client: BlixardClient;
let guest: GuestImage;

describe.runIf(QEMU_AVAILABLE)("a qemu microVM through a real node (TCG)", () => {
  // Two nodes: console logs are read through the node that does not run the VM.
  useQemuCluster("blixard-microvm", 1, (started) => ({ cluster, client, guest } = started), {
    logLines: 80,
  });

  it(
    "is booting until the guest is ready, then running; stops on request",
    async () => {
      await client.orchestrator.createVm("micro", {
        driver: "qemu",
        kernel: guest.kernel,
        initrd: guest.initrd,
        vcpus: 1,
        memoryMb: 128,
      });
      const seen = new Set<string>();
      const vm = await until(
        async () => {
          const current = await client.orchestrator.getVm("micro");
          seen.add(current.status);
          return current.status === "running" || current.status === "failed" ? current : undefined;
        },
        "the guest to be ready",
        BOOT_DEADLINE_MS,
        100,
      );
      expect(vm.status, vm.lastError).toBe("running");
      // A TCG boot takes seconds: polled every 100 ms, the VM was seen booting on the way.
      expect([...seen]).toContain("booting");
      await client.orchestrator.stopVm("micro");
      await until(
        async () =>
          (await client.orchestrator.getVm("micro")).status === "stopped" ? true : undefined,
        "the VM to stop",
        30_000,
      );
      await client.orchestrator.deleteVm("micro");
    },
    BOOT_DEADLINE_MS + 60_000,
  );

  it(
    "answers through a published port: vm create --publish, then HTTP to the node's port",
    async () => {
      const [hostPort] = await freePorts(1);
      const node = cluster.node(1);
      const endpoints = ["--endpoints", node.apiUrl];
      const created = await cluster.run("vm create", [
        "vm",
        "create",
        "web",
        "--driver",
        "qemu",
        "--kernel",
        guest.kernel,
        "--initrd",
        guest.initrd,
        "--memory",
        "128",
        "--publish",
        `${hostPort}:80`,
        // A health check on the port the guest serves: one failed probe would flip it.
        "--health-tcp",
        "80",
        "--health-interval-ms",
        "1000",
        "--health-timeout-ms",
        "1000",
        "--health-failures",
        "1",
        ...endpoints,
      ]);
      expect(created.code, created.output).toBe(0);
      const vm = await until(
        async () => {
          const current = await client.orchestrator.getVm("web");
          return current.status === "running" || current.status === "failed" ? current : undefined;
        },
        "the guest to be ready",
        BOOT_DEADLINE_MS,
      );
      expect(vm.status, vm.lastError).toBe("running");
      expect(vm.spec.publish).toEqual([{ hostPort, guestPort: 80 }]);
      // The guest's httpd serves its index page through QEMU's forward on the node's port.
      const page = await until(
        async () => {
          const answer = await fetch(`http://127.0.0.1:${hostPort}/`).catch(() => undefined);
          return answer?.ok === true ? answer.text() : undefined;
        },
        "an answer from the guest on the published port",
        30_000,
      );
      expect(page).toContain("blixard guest");
      const shown = await cluster.run("vm get", ["vm", "get", "web", ...endpoints]);
      expect(shown.output).toContain(`127.0.0.1:${hostPort} -> guest port 80`);
      expect(shown.output).toMatch(
        /health check\s+tcp guest port 80 every 1.0 s \(1.0 s timeout\), unhealthy after 1 failure/,
      );
      // The check went through the published port and passed: the VM stayed running.
      await until(
        async () =>
          (await client.orchestrator.vmLogs("web", { tail: 2000 })).text.includes(
            "health check passed",
          )
            ? true
            : undefined,
        "the first health probe to pass",
        30_000,
      );
      expect((await client.orchestrator.getVm("web")).status).toBe("running");
      await client.orchestrator.stopVm("web");
      // Stopped: QEMU is gone, so nothing listens on the port any more.
      await until(
        async () =>
          (await fetch(`http://127.0.0.1:${hostPort}/`).then(
            () => false,
            () => true,
          ))
            ? true
            : undefined,
        "the published port to close",
        30_000,
      );
      await until(
        async () =>
          (await client.orchestrator.getVm("web")).status === "stopped" ? true : undefined,
        "the VM to be stopped",
        30_000,
      );
      await client.orchestrator.deleteVm("web");
    },
    BOOT_DEADLINE_MS + 60_000,
  );

  it(
    "runs commands in the guest through any node (vm exec: output and exit code), and is unhealthy while its health port is closed, running once it opens",
    async () => {
      const created = await cluster.run("vm create", [
        "vm",
        "create",
        "agent",
        "--driver",
        "qemu",
        "--kernel",
        guest.kernel,
        "--initrd",
        guest.initrd,
        "--memory",
        "128",
        // Nothing listens on port 81 in the guest until the test starts a server there.
        "--health-tcp",
        "81",
        "--health-interval-ms",
        "1000",
        "--health-timeout-ms",
        "1000",
        "--health-failures",
        "2",
        "--endpoints",
        cluster.node(1).apiUrl,
      ]);
      expect(created.code, created.output).toBe(0);
      const unhealthy = await until(
        async () => {
          const current = await client.orchestrator.getVm("agent");
          return current.status === "unhealthy" || current.status === "failed"
            ? current
            : undefined;
        },
        "the guest to be up and its health check to fail",
        BOOT_DEADLINE_MS,
      );
      expect(unhealthy.status, unhealthy.lastError).toBe("unhealthy");
      expect(unhealthy.lastError).toMatch(
        /health check failed 2 times in a row: tcp guest port 81/,
      );
      const listed = await cluster.run("vm list", [
        "vm",
        "list",
        "--endpoints",
        cluster.node(1).apiUrl,
      ]);
      expect(listed.output).toMatch(/agent\s+running\s+unhealthy/);

      // Through the node that does not run the VM: the request is forwarded to the one that does.
      const other = cluster.nodes.find((n) => n.id !== unhealthy.nodeId)!;
      const exec = (command: string) =>
        cluster.run("vm exec", ["vm", "exec", "agent", "--endpoints", other.apiUrl, "--", command]);
      const failing = await exec("echo to-stdout; echo to-stderr >&2; exit 7");
      expect(failing.code, failing.output).toBe(7);
      expect(failing.output).toContain("to-stdout");
      expect(failing.output).toContain("to-stderr");
      const kernel = await exec("uname -r");
      expect(kernel.code, kernel.output).toBe(0);
      expect(kernel.output).toMatch(/cloud-amd64/);

      // A server on the checked port: the next probe passes and the VM is running again.
      const started = await exec("httpd -p 81 -h /www");
      expect(started.code, started.output).toBe(0);
      const recovered = await until(
        async () => {
          const current = await client.orchestrator.getVm("agent");
          return current.status === "running" ? current : undefined;
        },
        "the health check to pass again",
        60_000,
      );
      // The health failure was the last error only while it lasted.
      expect(recovered.lastError).toBe("");

      await client.orchestrator.stopVm("agent");
      await until(
        async () =>
          (await client.orchestrator.getVm("agent")).status === "stopped" ? true : undefined,
        "the VM to stop",
        60_000,
      );
      await client.orchestrator.deleteVm("agent");
    },
    BOOT_DEADLINE_MS + 120_000,
  );

  it(
    "keeps a VM's disk across stop and start on its node, streams its console through the other node, and discards the disk on delete",
    async () => {
      // Each boot prints a counter kept on the VM's disk (mounted on /data), then bumps it.
      const script = [
        "n=$(cat /data/count 2>/dev/null || echo 0)",
        "n=$((n+1))",
        "echo $n >/data/count",
        "sync",
        "echo BOOT-COUNT $n",
      ].join("\n");
      await client.orchestrator.createVm("data", {
        driver: "qemu",
        kernel: guest.kernel,
        initrd: guest.initrd,
        cmdline: `${DEFAULT_KERNEL_CMDLINE} blixard.run=${Buffer.from(script).toString("base64")}`,
        memoryMb: 128,
        diskGb: 1,
      });
      const placed = await until(
        async () => {
          const vm = await client.orchestrator.getVm("data");
          return vm.status === "running" || vm.status === "failed" ? vm : undefined;
        },
        "the guest to be ready",
        BOOT_DEADLINE_MS,
      );
      expect(placed.status, placed.lastError).toBe("running");
      const home = placed.nodeId as number;
      const other = cluster.nodes.find((n) => n.id !== home)!;
      const disk = join(cluster.node(home).dataDir, "orchestrator", "disks", "data.qcow2");
      expect(existsSync(disk)).toBe(true);

      // `vm logs --follow` through the node that does not run the VM, across a stop and a start.
      const follow = cluster.spawn("vm logs --follow", [
        "vm",
        "logs",
        "data",
        "--follow",
        "--endpoints",
        other.apiUrl,
      ]);
      await until(
        async () => (/BOOT-COUNT 1/.test(follow.output) ? true : undefined),
        () => `BOOT-COUNT 1 in the followed console (so far: ${follow.output.slice(-500)})`,
        60_000,
      );
      await client.orchestrator.stopVm("data");
      await until(
        async () =>
          (await client.orchestrator.getVm("data")).status === "stopped" ? true : undefined,
        "the VM to stop",
        60_000,
      );
      await client.orchestrator.startVm("data");
      const again = await until(
        async () => {
          const vm = await client.orchestrator.getVm("data");
          return vm.status === "running" || vm.status === "failed" ? vm : undefined;
        },
        "the guest to be ready again",
        BOOT_DEADLINE_MS,
      );
      expect(again.status, again.lastError).toBe("running");
      // Disks stay on their node: the test means something only if the VM came back there.
      expect(again.nodeId).toBe(home);
      await until(
        async () => (/BOOT-COUNT 2/.test(follow.output) ? true : undefined),
        () => `BOOT-COUNT 2 in the followed console (so far: ${follow.output.slice(-500)})`,
        60_000,
      );
      expect(follow.output).not.toMatch(/BOOT-COUNT 1[\s\S]*BOOT-COUNT 1/);
      follow.signal("SIGTERM");

      // The last lines, through either node.
      const tail = await cluster.run("vm logs", [
        "vm",
        "logs",
        "data",
        "--tail",
        "400",
        "--endpoints",
        other.apiUrl,
      ]);
      expect(tail.code, tail.output).toBe(0);
      expect(tail.output).toContain("BOOT-COUNT 2");

      await client.orchestrator.stopVm("data");
      await until(
        async () =>
          (await client.orchestrator.getVm("data")).status === "stopped" ? true : undefined,
        "the VM to stop",
        60_000,
      );
      await client.orchestrator.deleteVm("data");
      await until(
        async () => (existsSync(disk) ? undefined : true),
        "the deleted VM's disk to be discarded",
        30_000,
      );
    },
    3 * BOOT_DEADLINE_MS,
  );

  it("fails a VM whose kernel is outside the image directory, saying so", async () => {
    await client.orchestrator.createVm("shadow", {
      driver: "qemu",
      kernel: "/etc/shadow",
      vcpus: 1,
      memoryMb: 64,
      restart: { mode: "never", maxRestarts: 0, backoffMs: 100 },
    });
    const vm = await until(
      async () => {
        const current = await client.orchestrator.getVm("shadow");
        return current.status === "failed" ? current : undefined;
      },
      "the VM to fail",
      30_000,
    );
    expect(vm.lastError).toMatch(/outside this node's VM image directory/);
  });

  it("advertises kvm only when the node booted a guest under KVM", async () => {
    const [worker] = await client.orchestrator.listWorkers();
    // On this machine kind /dev/kvm opens but a guest does not boot under it (nested): no kvm.
    const logs = cluster.logs(400);
    const booted = /a guest booted under KVM/.test(logs);
    expect(worker?.features.includes("kvm")).toBe(booted);
  });
});

requireQemuWhenAsked();
