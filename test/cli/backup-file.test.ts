/** The backup file format: a round trip, and every kind of damage refused with a reason. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/common/errors.js";
import {
  decodeBackup,
  encodeBackup,
  type BackupHeader,
} from "../../src/cli/operator/backup-file.js";

const data = new Uint8Array(Array.from({ length: 1000 }, (_, i) => i % 251));
const header: BackupHeader = {
  format: 1,
  clusterId: "c",
  index: 42,
  term: 3,
  takenBy: 1,
  version: "0.1.0",
  createdAt: "2026-01-01T00:00:00.000Z",
  members: [{ id: 1, suffrage: "voter" }],
  dataBytes: data.byteLength,
  dataSha256: createHash("sha256").update(data).digest("hex"),
};

describe("backup file", () => {
  it("round-trips header and data", () => {
    const decoded = decodeBackup(encodeBackup({ header, data }));
    expect(decoded.header).toEqual(header);
    expect(decoded.data).toEqual(data);
  });

  it("refuses a flipped byte anywhere, a cut file, another format and a foreign file", () => {
    const bytes = encodeBackup({ header, data });
    for (const offset of [0, 9, 20, 100, bytes.byteLength - 500, bytes.byteLength - 1]) {
      const damaged = new Uint8Array(bytes);
      damaged[offset] = damaged[offset]! ^ 0x40;
      expect(() => decodeBackup(damaged), `byte ${offset}`).toThrow(InvalidArgumentError);
    }
    expect(() => decodeBackup(bytes.subarray(0, bytes.byteLength - 10))).toThrow(/checksum/);
    const future = new Uint8Array(bytes);
    future[11] = 2;
    expect(() => decodeBackup(future)).toThrow(/format 2/);
    expect(() => decodeBackup(new TextEncoder().encode("not a backup at all, surely"))).toThrow(
      /magic/,
    );
  });

  it("refuses data whose digest differs from the header's, even with a valid trailer", () => {
    const lying = encodeBackup({ header: { ...header, dataSha256: "0".repeat(64) }, data });
    expect(() => decodeBackup(lying)).toThrow(/SHA-256/);
  });
});
