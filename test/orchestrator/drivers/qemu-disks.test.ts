/**
 * Per-VM disks made with the real qemu-img: an overlay whose backing file is the base (so the
 * base is only ever read), reused across runs, grown to diskGb, blank data disks, backing chains
 * that leave the image directory refused, and discard. Needs qemu-img (Debian qemu-utils);
 * BLIXARD_REQUIRE_QEMU=1 makes its absence a failure.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findOnPath } from "../../../src/orchestrator/host/probe.js";
import { QemuDisks } from "../../../src/orchestrator/drivers/qemu-disks.js";
import { makeTempDir } from "./helpers.js";

const QEMU_IMG = await findOnPath("qemu-img", process.env["PATH"] ?? "");
const REQUIRE_QEMU = process.env["BLIXARD_REQUIRE_QEMU"] === "1";
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

let temp: { dir: string; remove: () => void };
let imageDir: string;
let diskDir: string;

beforeEach(() => {
  temp = makeTempDir("disks");
  imageDir = join(temp.dir, "images");
  diskDir = join(temp.dir, "disks");
  mkdirSync(imageDir);
});
afterEach(() => temp.remove());

function info(path: string): { "backing-filename"?: string; "virtual-size": number } {
  const text = execFileSync("qemu-img", ["info", "--output=json", "-U", path], {
    encoding: "utf8",
  });
  return JSON.parse(text) as { "backing-filename"?: string; "virtual-size": number };
}

describe.runIf(QEMU_IMG !== null)("QemuDisks", () => {
  it("makes a fresh disk when asked, dropping what the guest wrote in the old one", async () => {
    const disks = new QemuDisks({ diskDir, imageDir });
    const disk = await disks.prepare("db", { image: "", diskGb: 1 });
    const path = disk?.path as string;
    // Stands for what a guest wrote: blocks allocated in the qcow2.
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 4M", path], { stdio: "ignore" });
    const used = (p: string): number => statSync(p).blocks;
    const written = used(path);
    expect((await disks.prepare("db", { image: "", diskGb: 1 }))?.path).toBe(path);
    expect(used(path)).toBe(written);
    await disks.prepare("db", { image: "", diskGb: 1 }, true);
    expect(used(path)).toBeLessThan(written);
    expect(info(path)["virtual-size"]).toBe(GIB);
  });

  it("makes a qcow2 overlay backed by the base, once, and keeps it until discarded", async () => {
    const base = join(imageDir, "base.raw");
    writeFileSync(base, Buffer.alloc(16 * MIB));
    const disks = new QemuDisks({ diskDir, imageDir });
    const disk = await disks.prepare("web", { image: base, diskGb: 0 });
    expect(disk).toEqual({ path: join(diskDir, "web.qcow2"), format: "qcow2", readOnly: false });
    const made = info(disk?.path as string);
    expect(made["backing-filename"]).toBe(base);
    expect(made["virtual-size"]).toBe(16 * MIB);
    expect(statSync(disk?.path as string).mode & 0o777).toBe(0o600);

    // A second run finds the same disk: the guest's writes in it are kept.
    const mtime = statSync(disk?.path as string).mtimeMs;
    await disks.prepare("web", { image: base, diskGb: 0 });
    expect(statSync(disk?.path as string).mtimeMs).toBe(mtime);
    expect(await disks.names()).toEqual(["web"]);

    await disks.discard("web");
    expect(existsSync(disk?.path as string)).toBe(false);
    expect(await disks.names()).toEqual([]);
  });

  it("grows the overlay to diskGb, and makes a blank data disk without a base", async () => {
    const base = join(imageDir, "small.raw");
    writeFileSync(base, Buffer.alloc(MIB));
    const disks = new QemuDisks({ diskDir, imageDir });
    const grown = await disks.prepare("big", { image: base, diskGb: 2 });
    expect(info(grown?.path as string)["virtual-size"]).toBe(2 * GIB);
    const blank = await disks.prepare("data", { image: "", diskGb: 1 });
    const blankInfo = info(blank?.path as string);
    expect(blankInfo["virtual-size"]).toBe(GIB);
    expect(blankInfo["backing-filename"]).toBeUndefined();
    expect(await disks.prepare("none", { image: "", diskGb: 0 })).toBeUndefined();
  });

  it("refuses a qcow2 base whose backing file is outside the image directory", async () => {
    const outside = join(temp.dir, "secret.raw");
    writeFileSync(outside, Buffer.alloc(MIB));
    const sneaky = join(imageDir, "sneaky.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", outside, "-F", "raw", sneaky]);
    const disks = new QemuDisks({ diskDir, imageDir });
    await expect(disks.prepare("x", { image: sneaky, diskGb: 0 })).rejects.toThrow(
      /backed by .*secret\.raw, outside this node's VM image directory/,
    );
    expect(existsSync(join(diskDir, "x.qcow2"))).toBe(false);
    // Without an image directory the chain is the operator's business.
    const open = new QemuDisks({ diskDir });
    expect(await open.prepare("x", { image: sneaky, diskGb: 0 })).toBeDefined();
  });
});

if (QEMU_IMG === null && REQUIRE_QEMU) {
  it("qemu-img is installed (BLIXARD_REQUIRE_QEMU=1)", () => {
    expect.fail("BLIXARD_REQUIRE_QEMU=1 but qemu-img is missing; apt-get install -y qemu-utils");
  });
}
