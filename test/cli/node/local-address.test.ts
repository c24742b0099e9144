/**
 * The address an agent-only worker advertises for incoming live migrations: the source address
 * the kernel picks toward its servers.
 */
import { networkInterfaces } from "node:os";
import { describe, expect, it } from "vitest";
import { localAddressToward } from "../../../src/cli/node/local-address.js";

describe("localAddressToward", () => {
  it("is loopback toward a server on loopback", async () => {
    expect(await localAddressToward(new URL("https://127.0.0.1:7000"))).toBe("127.0.0.1");
  });

  it("is this machine's own address toward that address (the route the kernel picks)", async () => {
    const own = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === "IPv4" && !i.internal);
    expect(own, "this machine has a non-loopback IPv4 address").toBeDefined();
    const address = own!.address;
    expect(await localAddressToward(new URL(`https://${address}:7000`))).toBe(address);
  });

  it("fails with the resolver's error for a name that does not resolve", async () => {
    await expect(localAddressToward(new URL("https://no-such-host.invalid:7000"))).rejects.toThrow(
      /no-such-host\.invalid|ENOTFOUND|EAI_AGAIN/,
    );
  });
});
