/**
 * The drivers: how this node runs what is assigned to it. Tasks run once through
 * {@link runTask}; VMs are supervised by a {@link VmDriverPort}: {@link ProcessDriver} for a
 * command, {@link QemuDriver} for a QEMU microvm. A {@link ProcessRegistry} lets a restarted
 * agent kill what its previous incarnation left running.
 */
export {
  runTask,
  type RunTaskOptions,
  type RunnableTaskSpec,
  type TaskOutcome,
  type TaskRun,
} from "./task-runner.js";
export {
  checkVmName,
  MAX_VM_NAME_LENGTH,
  type VmDriverCommonOptions,
  type VmDriverPort,
  type VmHandle,
  type VmObservation,
  type VmObservedStatus,
  type VmStartRequest,
  type VmStopMethod,
  type VmStopResult,
} from "./vm-driver.js";
export { ProcessDriver, type ProcessDriverOptions } from "./process-driver.js";
export { QemuDriver, type QemuDriverOptions } from "./qemu-driver.js";
export {
  buildQemuArgs,
  QEMU_BINARY,
  type QemuAccelerator,
  type QemuLaunchConfig,
} from "./qemu-args.js";
export {
  QmpClient,
  QmpCommandError,
  type QmpConnectOptions,
  type QmpEvent,
  type QmpGreeting,
} from "./qmp.js";
export { ProcessRegistry, type ReapedProcess, type RegisteredProcess } from "./process-registry.js";
export { restartDelayMs, decideAfterExit, type AfterExit } from "./restart-policy.js";
export * from "./limits.js";
