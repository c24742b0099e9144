/**
 * How a follower's {@link HeartbeatRelay} reaches the leader: `POST /v1/agent/heartbeats` to the
 * leader's API address, over the node's forwarding pool (which presents this server's own
 * certificate: the leader lets only members relay). The leader's refusal comes back as its typed
 * error; no known leader is UNAVAILABLE.
 */
import type { Agent as HttpsAgent } from "node:https";
import {
  ERROR_CODES,
  UnavailableError,
  errorForCode,
  type ErrorCode,
} from "../../common/errors.js";
import { forwardRequest } from "../forward.js";
import type { HeartbeatAck } from "./agent-hub.js";
import { RELAY_TIMEOUT_MS, type RelaySend } from "./heartbeat-relay.js";

/** The relay's sender for a node whose leader's API address `leaderUrl` gives. */
export function relayToLeader(options: {
  readonly leaderUrl: () => URL | undefined;
  readonly httpsAgent?: HttpsAgent;
}): RelaySend {
  return async (nodeIds) => {
    const leader = options.leaderUrl();
    if (leader === undefined) {
      throw new UnavailableError("no leader is known yet to relay heartbeats to; retry shortly");
    }
    const response = await forwardRequest(
      leader,
      { method: "POST", url: "/v1/agent/heartbeats", body: { nodeIds }, headers: {} },
      {
        hops: 0,
        timeoutMs: RELAY_TIMEOUT_MS,
        signal: new AbortController().signal,
        ...(options.httpsAgent === undefined ? {} : { httpsAgent: options.httpsAgent }),
      },
    );
    let body: unknown;
    try {
      body = JSON.parse(response.text);
    } catch {
      body = undefined;
    }
    if (response.statusCode === 200) return body as HeartbeatAck;
    const error = body as { code?: unknown; message?: unknown } | undefined;
    const code = error?.code;
    const message = typeof error?.message === "string" ? error.message : response.text;
    if (typeof code === "string" && code !== "STORAGE_CORRUPT" && isErrorCode(code)) {
      throw errorForCode(code, `the leader refused relayed heartbeats: ${message}`);
    }
    throw new UnavailableError(
      `the leader answered relayed heartbeats with HTTP ${response.statusCode}: ${message}`,
    );
  };
}

function isErrorCode(code: string): code is Exclude<ErrorCode, "STORAGE_CORRUPT"> {
  return Object.hasOwn(ERROR_CODES, code);
}
