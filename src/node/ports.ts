/**
 * The ports the runtime depends on, gathered in one place. Each is defined in the lowest layer
 * that needs it (the clock in common, the transport in transport, the log store in storage,
 * the state machine in statemachine); the real platform and the simulator each provide one
 * implementation, so the runtime runs unchanged, and reproducibly, inside the simulator.
 */
export type { Clock, TimerHandle } from "../common/clock.js";
export type { SnapshotDelivery, Transport, TransportHandlers } from "../transport/transport.js";
export type { LogStore, LogUpdate } from "../storage/log-store.js";
export type { StateMachine, AppliedEntry } from "../statemachine/state-machine.js";
