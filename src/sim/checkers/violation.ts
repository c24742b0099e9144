/** A property of the system found broken during a run. */
export interface Violation {
  /** A stable short name of the property, e.g. `election-safety`, `linearizability`. */
  readonly property: string;
  /** What was seen, where and when. */
  readonly message: string;
  /** Virtual time at which it was detected. */
  readonly atMs: number;
}
