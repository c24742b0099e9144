/**
 * `vm logs --follow` on the node that runs the VM: the last lines of its console log, then each
 * new piece as it is written (see `orchestrator/drivers/vm-log-follower.ts`: a directory watch,
 * reads paced by the socket), across rotations and stop/start on this node.
 *
 * Messages (see `log-stream.ts` for the wire format): `open` `{name, nodeId}`, `output`
 * `{text}`, `rotated` `{}` (what follows is the new file's), and `end` `{reason, nodeId}`, which
 * ends the stream: `deleted` (the VM is gone) or `moved` (it now runs on node `nodeId`: follow
 * again, any node forwards there).
 */
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/index.js";
import { VmLogFollower } from "../../orchestrator/drivers/vm-log-follower.js";
import type { LogSource } from "./log-stream.js";

/** What following a VM's log needs of the node. */
export interface VmLogFollowOptions {
  readonly name: string;
  readonly nodeId: NodeId;
  readonly queries: OrchestratorQueries;
  /** Subscribes to "entries were applied"; returns the unsubscriber. */
  readonly onApplied: (listener: () => void) => () => void;
  /** The node's VM log directory. */
  readonly logDir: string;
  /** The tail already read, and where in which file it ended. */
  readonly start: {
    readonly text: string;
    readonly offset: number;
    readonly inode: number | undefined;
  };
}

/** The log source of one VM; see the module comment. */
export function vmLogSource(options: VmLogFollowOptions): LogSource {
  return (sink) => {
    const { name, nodeId, queries, start } = options;
    sink.send("open", { name, nodeId });
    if (start.text !== "") sink.send("output", { text: start.text });
    const follower = new VmLogFollower(
      options.logDir,
      name,
      { offset: start.offset, inode: start.inode },
      {
        text: (text) => sink.send("output", { text }),
        rotated: () => void sink.send("rotated", {}),
      },
    );
    sink.onDrain(() => follower.resume());
    const look = (): void => {
      const vm = queries.vm(name);
      if (vm === undefined) sink.end({ reason: "deleted", nodeId: null });
      else if (vm.nodeId !== null && vm.nodeId !== nodeId) {
        sink.end({ reason: "moved", nodeId: vm.nodeId });
      }
    };
    const unsubscribe = options.onApplied(look);
    look();
    return () => {
      follower.close();
      unsubscribe();
    };
  };
}
