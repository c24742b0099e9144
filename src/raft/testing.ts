/**
 * White-box hooks for the tests of `src/raft` (under `test/raft`). Not part of the build
 * (`tsconfig.build.json` leaves out every `testing.ts`) and imported by no source module.
 */
import type { Raft } from "./raft.js";
import { rawNodeCore, type RawNode } from "./rawnode.js";

/**
 * The core inside `node`: its fields may be read and, in tests that tamper with a healthy
 * cluster to prove a checker can fail, written. The runtime and the simulator use
 * {@link RawNode.inspect} instead.
 */
export function coreOf(node: RawNode): Raft {
  return rawNodeCore(node);
}
