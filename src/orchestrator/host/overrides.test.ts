import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../common/errors.js";
import {
  parseCpuMillis,
  parseDiskGb,
  parseFeatures,
  parseHostOverrides,
  parseMemoryMb,
  resolveHost,
} from "./overrides.js";
import type { HostProbe } from "./probe.js";

const probe: HostProbe = {
  cpuMillis: 8_000,
  memoryMb: 16_000,
  diskGb: 200,
  kvm: true,
  kvmReason: "a guest booted under KVM",
  qemuPath: "/usr/bin/qemu-system-x86_64",
};

describe("parsing overrides", () => {
  it("reads CPU as cores or millicores", () => {
    expect(parseCpuMillis("4")).toBe(4_000);
    expect(parseCpuMillis("2.5")).toBe(2_500);
    expect(parseCpuMillis("0.125")).toBe(125);
    expect(parseCpuMillis(" 2500m ")).toBe(2_500);
  });

  it.each(["0", "0m", "-1", "2.5m", "1.2345", "four", "", "1e3"])("refuses cpu %j", (text) => {
    expect(() => parseCpuMillis(text)).toThrow(InvalidArgumentError);
    expect(() => parseCpuMillis(text)).toThrow(/give cores \(4, 2\.5\) or millicores \(2500m\)/);
  });

  it("reads memory in MiB or with a binary unit", () => {
    expect(parseMemoryMb("8192")).toBe(8_192);
    expect(parseMemoryMb("512M")).toBe(512);
    expect(parseMemoryMb("512MiB")).toBe(512);
    expect(parseMemoryMb("8G")).toBe(8_192);
    expect(parseMemoryMb("8 GiB")).toBe(8_192);
    expect(parseMemoryMb("1.5g")).toBe(1_536);
    expect(parseMemoryMb("1T")).toBe(1_048_576);
  });

  it.each(["0", "-5", "1.5", "8X", "G", "1.0001G", "lots"])("refuses memory %j", (text) => {
    expect(() => parseMemoryMb(text)).toThrow(/is not a memory size/);
  });

  it("reads disk in whole GiB", () => {
    expect(parseDiskGb("100")).toBe(100);
    expect(parseDiskGb("100G")).toBe(100);
    expect(parseDiskGb("2T")).toBe(2_048);
    expect(parseDiskGb("0")).toBe(0);
  });

  it.each(["512M", "1.5", "-1", "ten"])("refuses disk %j", (text) => {
    expect(() => parseDiskGb(text)).toThrow(/is not a disk size/);
  });

  it("reads features to add and to remove, as a list or an array", () => {
    expect(parseFeatures("ssd, gpu ,-kvm,ssd,")).toEqual({
      addFeatures: ["gpu", "ssd"],
      removeFeatures: ["kvm"],
    });
    expect(parseFeatures(["zone-a", "-qemu"])).toEqual({
      addFeatures: ["zone-a"],
      removeFeatures: ["qemu"],
    });
    expect(parseFeatures("")).toEqual({ addFeatures: [], removeFeatures: [] });
  });

  it("accepts what the model accepts: letters of either case, digits, '.', '_', ':' and '-'", () => {
    expect(parseFeatures("GPU:a100,zone.eu-1,a_b").addFeatures).toEqual([
      "GPU:a100",
      "a_b",
      "zone.eu-1",
    ]);
    expect(parseFeatures("x".repeat(64)).addFeatures).toEqual(["x".repeat(64)]);
  });

  it.each(["-", "a b", "_x", ".x", "a/b", "x".repeat(65), "--kvm", "é"])(
    "refuses feature %j",
    (item) => {
      expect(() => parseFeatures(item)).toThrow(/is not a feature name/);
    },
  );

  it("refuses a feature both added and removed", () => {
    expect(() => parseFeatures("kvm,-kvm")).toThrow(/kvm is both added and removed/);
  });

  it("parses only what is given", () => {
    expect(parseHostOverrides({})).toEqual({ addFeatures: [], removeFeatures: [] });
    expect(parseHostOverrides({ cpu: "2", memory: "1G", disk: "10", features: "ssd" })).toEqual({
      cpuMillis: 2_000,
      memoryMb: 1_024,
      diskGb: 10,
      addFeatures: ["ssd"],
      removeFeatures: [],
    });
  });
});

describe("resolveHost", () => {
  it("registers what was measured, with kvm and qemu when detected", () => {
    expect(resolveHost(probe, parseHostOverrides({}))).toEqual({
      capacity: { cpuMillis: 8_000, memoryMb: 16_000, diskGb: 200 },
      features: ["kvm", "qemu"],
    });
    expect(resolveHost({ ...probe, kvm: false, qemuPath: null }, parseHostOverrides({}))).toEqual({
      capacity: { cpuMillis: 8_000, memoryMb: 16_000, diskGb: 200 },
      features: [],
    });
  });

  it("lets each override replace its measurement and features be added or removed", () => {
    const overrides = parseHostOverrides({ memory: "4G", features: "ssd,-kvm,zone-a" });
    expect(resolveHost(probe, overrides)).toEqual({
      capacity: { cpuMillis: 8_000, memoryMb: 4_096, diskGb: 200 },
      features: ["qemu", "ssd", "zone-a"],
    });
  });

  it("refuses more features than a worker may have", () => {
    // 30 added and the two detected make the 32 a worker may have; one more is refused.
    const many = Array.from({ length: 30 }, (_, i) => `f${i}`);
    expect(resolveHost(probe, parseHostOverrides({ features: many })).features).toHaveLength(32);
    expect(() => resolveHost(probe, parseHostOverrides({ features: [...many, "f30"] }))).toThrow(
      /would offer 33 features; a worker may have at most 32/,
    );
  });

  it("lists an added feature that was also detected once", () => {
    expect(resolveHost(probe, parseHostOverrides({ features: "kvm" })).features).toEqual([
      "kvm",
      "qemu",
    ]);
  });
});
