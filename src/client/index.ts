/** The TypeScript SDK of Blixard. */
export {
  BlixardClient,
  DEFAULT_TIMEOUT_MS,
  MAX_BACKOFF_MS,
  type BlixardClientOptions,
} from "./client.js";
export { errorFromResponse } from "./errors.js";
// Every error the SDK throws, so callers can branch with `instanceof`.
export {
  BlixardError,
  CancelledError,
  ConflictError,
  ERROR_CODES,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  NotLeaderError,
  OverloadedError,
  PermissionDeniedError,
  StorageCorruptError,
  StorageFullError,
  TimeoutError,
  TooLargeError,
  UnauthenticatedError,
  UnavailableError,
  isBlixardError,
  type ErrorCode,
  type LeaderHint,
} from "../common/errors.js";
export type * from "./types.js";
export {
  OrchestratorClient,
  POLL_SLACK_MS,
  TASK_STATUS_VALUES,
  type CreateVmOptions,
  type DrainedWorker,
  type OrchestratorSettings,
  type OrchestratorTransport,
  type Task,
  type TaskListOptions,
  type DrainRequestOptions,
  type TaskLogs,
  type TaskPoll,
  type TaskSpecInput,
  type TaskStatus,
  type Vm,
  type VmExecResult,
  type VmLog,
  type VmSpecInput,
  type WaitTaskOptions,
  type Worker,
} from "./orchestrator.js";
export {
  AclClient,
  type AclRule,
  type CertBinding,
  type CreatedToken,
  type Policy,
  type Token,
  type WhoAmI,
} from "./acl.js";
export type { FollowOptions, TaskLogEvent, VmLogEvent } from "./log-follow.js";
export type {
  ClusterEvent,
  EventTopic,
  EventsOptions,
  StreamProgress,
  WatchEvent,
  WatchOptions,
} from "./streams.js";
export {
  CoordinationClient,
  type LeaseStatus,
  type TxnCompare,
  type TxnOp,
  type TxnOpResult,
  type TxnRequest,
  type TxnResult,
  type WaitResult,
} from "./coordination.js";
export {
  Lease,
  campaign,
  electionLeader,
  lock,
  observeLeader,
  type Held,
  type LineOptions,
} from "./lock.js";
export {
  BACKUP_TIMEOUT_MS,
  OperatorClient,
  type ClusterBackup,
  type SnapshotMember,
} from "./operator.js";
