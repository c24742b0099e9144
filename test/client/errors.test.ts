import { describe, expect, it } from "vitest";
import { errorFromResponse } from "../../src/client/errors.js";
import { NotLeaderError, StorageCorruptError, UnavailableError } from "../../src/client/index.js";

describe("errorFromResponse", () => {
  it("gives a node's STORAGE_CORRUPT as the exported StorageCorruptError, message unchanged", () => {
    const message = "storage corrupt in /data/raft/wal-3 at offset 42: bad CRC; restore this node";
    const error = errorFromResponse(500, { code: "STORAGE_CORRUPT", message });
    expect(error).toBeInstanceOf(StorageCorruptError);
    expect(error.code).toBe("STORAGE_CORRUPT");
    expect(error.message).toBe(message);
  });

  it("keeps the leader hint of NOT_LEADER", () => {
    const error = errorFromResponse(421, {
      code: "NOT_LEADER",
      message: "not the leader",
      leaderHint: { id: 2, address: "https://127.0.0.1:7002" },
    });
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as NotLeaderError).leaderHint).toEqual({
      id: 2,
      address: "https://127.0.0.1:7002",
    });
  });

  it("turns a 5xx without an error body into UNAVAILABLE", () => {
    expect(errorFromResponse(502, "<html>bad gateway</html>")).toBeInstanceOf(UnavailableError);
  });
});
