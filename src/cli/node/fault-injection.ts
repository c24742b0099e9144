/**
 * A test-only way to make a real node hit a fatal storage error, so tests can check what a
 * fatal error does to the process (closes the WAL and transport, exits non-zero within a
 * second). Set `BLIXARD_TEST_FAIL_STORAGE_WHEN=<path>`: once a file exists at that path, every
 * write to the raft log fails as a dying disk's would. Not in `--help`; never set in production
 * (unset, the store is used as is, at no cost).
 */
import { existsSync } from "node:fs";
import { InternalError } from "../../common/errors.js";
import type { LogStore } from "../../node/ports.js";

/** The environment variable that arms the fault. */
export const FAIL_STORAGE_ENV = "BLIXARD_TEST_FAIL_STORAGE_WHEN";

/** `store`, or, when `triggerPath` is set, a view of it whose `save` fails once that file exists. */
export function withInjectedStorageFailure(
  store: LogStore,
  triggerPath: string | undefined,
): LogStore {
  if (triggerPath === undefined || triggerPath === "") return store;
  return new Proxy(store, {
    get(target, property) {
      if (property === "save") {
        return (...args: Parameters<LogStore["save"]>): Promise<void> =>
          existsSync(triggerPath)
            ? Promise.reject(new InternalError(`injected storage failure (${FAIL_STORAGE_ENV})`))
            : target.save(...args);
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as () => unknown).bind(target) : value;
    },
  });
}
