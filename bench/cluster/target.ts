/** What the workloads need from a cluster under test (Blixard or etcd). */
export interface ClusterTarget {
  /** Its name in the report. */
  readonly name: string;
  /** Number of members. */
  readonly size: number;
  /** Starts every member and waits until they agree on a leader. */
  start(): Promise<void>;
  /** Waits until every running member names the same leader; returns its member index. */
  waitForLeader(deadlineMs?: number): Promise<number>;
  /** Writes `value` at `key` through member `member` (rejects on any failure). */
  put(member: number, key: string, value: string, timeoutMs?: number): Promise<void>;
  /** A linearizable read of `key` through member `member` (rejects on any failure). */
  get(member: number, key: string): Promise<void>;
  /** SIGKILLs member `member` and waits until it is gone. */
  kill(member: number): Promise<void>;
  /** Restarts member `member` on its data directory. */
  restart(member: number): Promise<void>;
  /** The pids of the running members. */
  pids(): number[];
  /** Stops every member gracefully and closes client connections. */
  stop(): Promise<void>;
}
