/** How a ConfChange (etcd ConfChangeV2) maps onto joint consensus. */
import { InvalidArgumentError } from "../../common/errors.js";
import type { ConfChange } from "../types.js";
import { ConfChangeTransition } from "../types.js";

/**
 * etcd ConfChangeV2.EnterJoint: joint is used if transition != Auto or changes.length > 1;
 * autoLeave = transition is Auto or Implicit. When joint is not used, autoLeave is false (as in
 * etcd): a simple change has nothing to leave.
 * @throws InvalidArgumentError for an unknown transition.
 */
export function confChangeEntersJoint(cc: ConfChange): {
  entersJoint: boolean;
  autoLeave: boolean;
} {
  let autoLeave: boolean;
  switch (cc.transition) {
    case ConfChangeTransition.Auto:
    case ConfChangeTransition.Implicit:
      autoLeave = true;
      break;
    case ConfChangeTransition.Explicit:
      autoLeave = false;
      break;
    default:
      throw new InvalidArgumentError(
        `unknown conf change transition ${String(cc.transition)}; expected 0 (auto), 1 (implicit) or 2 (explicit)`,
      );
  }
  if (cc.transition !== ConfChangeTransition.Auto || cc.changes.length > 1) {
    return { entersJoint: true, autoLeave };
  }
  return { entersJoint: false, autoLeave: false };
}

/**
 * etcd ConfChangeV2.LeaveJoint: true when changes is empty and transition is Auto (context may
 * be anything): the zero conf change is the request to leave a joint config.
 */
export function confChangeLeavesJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0 && cc.transition === ConfChangeTransition.Auto;
}
