/**
 * A test-only way to make a real node hit a fatal storage error, so tests can check what a
 * fatal error does to the process (closes the WAL and transport, exits non-zero within a
 * second). Set `BLIXARD_TEST_FAIL_STORAGE_AFTER_MS=<ms>`: once that long has passed since the
 * node started, every write to the raft log fails as a dying disk's would. Not in `--help`;
 * never set in production.
 */
import type { Clock } from "../../common/clock.js";
import { InternalError } from "../../common/errors.js";
import type { LogStore } from "../../node/ports.js";

/** The environment variable that arms the fault. */
export const FAIL_STORAGE_ENV = "BLIXARD_TEST_FAIL_STORAGE_AFTER_MS";

/**
 * `store`, or, when `afterMs` is a number, a view of it whose `save` fails once `afterMs` has
 * passed on `clock`.
 */
export function withInjectedStorageFailure(
  store: LogStore,
  afterMs: string | undefined,
  clock: Clock,
): LogStore {
  if (afterMs === undefined || afterMs === "") return store;
  const failAtMs = clock.now() + Number(afterMs);
  return new Proxy(store, {
    get(target, property) {
      if (property === "save") {
        return (...args: Parameters<LogStore["save"]>): Promise<void> =>
          clock.now() >= failAtMs
            ? Promise.reject(new InternalError(`injected storage failure (${FAIL_STORAGE_ENV})`))
            : target.save(...args);
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as () => unknown).bind(target) : value;
    },
  });
}
