/** What the on-disk format fixtures hold (shared by the writer and the test). */
import { fileURLToPath } from "node:url";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";
import { encodeKvCommand } from "../../src/statemachine/kv/command-codec.js";

/** The fixtures of the formats' current versions (format 1 of each, see the test). */
export const FIXTURES = fileURLToPath(new URL("./fixtures/current", import.meta.url));

/** The three voters of the fixture cluster. */
export const FIXTURE_CONF_STATE = {
  voters: [1, 2, 3],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

/** Four kv puts, `k1=v1` … `k4=v4`, as entries carry them. */
export function fixtureCommands(): Uint8Array[] {
  return [1, 2, 3, 4].map((i) =>
    encodeCommandEnvelope({
      proposedAtMs: 1_000 * i,
      payload: encodeKvCommand({
        op: "put",
        key: `k${i}`,
        value: new TextEncoder().encode(`v${i}`),
      }),
    }),
  );
}
