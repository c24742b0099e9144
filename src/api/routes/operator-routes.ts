/** The operator routes: backup of the whole replicated state. */
import { createHash } from "node:crypto";
import type { OperatorService } from "../operator-service.js";
import type { RouteSpec } from "../route.js";
import { OperatorSnapshotResponse } from "../schema/operator.js";

/** The operator routes over `operator`; `version` is this node's software version. */
export function operatorRoutes(operator: OperatorService, version: string): RouteSpec[] {
  return [
    {
      method: "GET",
      url: "/v1/operator/snapshot",
      tag: "operator",
      summary:
        "A consistent snapshot of the whole replicated state (kv, orchestrator, ACL, sessions) for backup",
      response: OperatorSnapshotResponse,
      // The snapshot holds every secret hash and every key: operators only.
      permission: { resource: "cluster", access: "operator" },
      errors: ["NOT_LEADER", "TIMEOUT", "UNAVAILABLE"],
      handler: async (context) => {
        const snapshot = await operator.snapshot(context.call);
        const data = Buffer.from(
          snapshot.data.buffer,
          snapshot.data.byteOffset,
          snapshot.data.byteLength,
        );
        return {
          clusterId: snapshot.clusterId,
          index: snapshot.index,
          term: snapshot.term,
          takenBy: snapshot.takenBy,
          version,
          members: snapshot.members.map((m) => ({
            id: m.id,
            suffrage: m.suffrage,
            ...(m.addresses === undefined
              ? {}
              : { raftAddress: m.addresses.raftAddress, apiAddress: m.addresses.apiAddress }),
          })),
          sha256: createHash("sha256").update(data).digest("hex"),
          dataBase64: data.toString("base64"),
        };
      },
    },
  ];
}
