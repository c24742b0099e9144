/**
 * A strict reader of JSON-shaped values (what `JSON.parse` returns, or a caller's plain object):
 * every field must be present with exactly the expected type and range, and no unknown field may
 * be present. Errors name the field by its path ("submitTask.spec.maxAttempts") and say what was
 * expected: `InvalidArgumentError` for a wrong shape or value, `TooLargeError` for a string or
 * list over its limit.
 *
 * Private to the orchestrator folder: the codecs and the model build their readers on it.
 */
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import { utf8ByteLength } from "../codec/utf8.js";

/** Limits of one string field. */
export interface StringRules {
  /** The most UTF-8 bytes (over it: `TooLargeError`). */
  readonly maxBytes: number;
  /** Must not be empty. Default false. */
  readonly nonEmpty?: boolean;
  /** Must match this (checked after the length). */
  readonly pattern?: RegExp;
  /** What the pattern means, for the error message. */
  readonly patternHint?: string;
  /** Refuse a NUL character (nothing handed to the operating system may hold one). Default false. */
  readonly noNul?: boolean;
}

/**
 * Where a value sits, for error messages: a string, or a {@link LazyPath} that becomes one only
 * when an error is built. Every field and item of every applied command used to get its path
 * string up front ("submitTasks.tasks[412].spec.env"), and those strings were a good part of
 * decoding a batch of 1,000 tasks, which every server does for every entry it applies.
 */
export type FieldPath = string | LazyPath;

/** A path built on demand (`toString`, which template literals call) from its parent's. */
export class LazyPath {
  readonly #parent: FieldPath;
  readonly #part: string | number;
  readonly #note: boolean;

  /**
   * `parent.part` for a field name, `parent[part]` for an item index, `parent (part)` for a note
   * (`note` true: what the value turned out to be, as "(taskFinished)").
   */
  constructor(parent: FieldPath, part: string | number, note = false) {
    this.#parent = parent;
    this.#part = part;
    this.#note = note;
  }

  /** The path as text. */
  toString(): string {
    const parent = String(this.#parent);
    if (this.#note) return `${parent} (${this.#part})`;
    return typeof this.#part === "number" ? `${parent}[${this.#part}]` : `${parent}.${this.#part}`;
  }
}

/** Describes a value for an error message without echoing much of it. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value.length > 40 ? "a long string" : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return `a${typeof value === "object" ? "n" : ""} ${typeof value}`;
}

/**
 * Whether `value` is a string that {@link checkString} accepts: the same checks, in one pass, with
 * no path. Throws nothing.
 */
function isAcceptedString(value: unknown, rules: StringRules): value is string {
  if (typeof value !== "string") return false;
  const lengthBytes = utf8ByteLength(value);
  return (
    lengthBytes !== undefined &&
    lengthBytes <= rules.maxBytes &&
    (rules.nonEmpty !== true || lengthBytes > 0) &&
    (rules.noNul !== true || !value.includes("\u0000")) &&
    (rules.pattern === undefined || value === "" || rules.pattern.test(value))
  );
}

/**
 * Checks a string against `rules` and returns it. `path` names it in errors. Throws
 * `InvalidArgumentError` or `TooLargeError`.
 */
export function checkString(value: unknown, path: FieldPath, rules: StringRules): string {
  if (isAcceptedString(value, rules)) return value;
  if (typeof value !== "string") {
    throw new InvalidArgumentError(`${path} must be a string, got ${describe(value)}`);
  }
  const lengthBytes = utf8ByteLength(value);
  if (lengthBytes === undefined) {
    throw new InvalidArgumentError(`${path} is not well-formed Unicode (lone surrogate)`);
  }
  if (lengthBytes > rules.maxBytes) {
    throw new TooLargeError(
      `${path} is ${lengthBytes} bytes; the limit is ${rules.maxBytes} bytes`,
    );
  }
  if (rules.nonEmpty === true && lengthBytes === 0) {
    throw new InvalidArgumentError(`${path} must not be empty`);
  }
  if (rules.noNul === true && value.includes("\u0000")) {
    throw new InvalidArgumentError(`${path} must not contain a NUL character`);
  }
  if (rules.pattern !== undefined && value !== "" && !rules.pattern.test(value)) {
    throw new InvalidArgumentError(
      `${path} ${describe(value)} is not valid: ${rules.patternHint ?? `must match ${String(rules.pattern)}`}`,
    );
  }
  return value;
}

/** Checks an integer in `min..max` and returns it. Throws `InvalidArgumentError`. */
export function checkInteger(value: unknown, path: FieldPath, min: number, max: number): number {
  if (!isIntegerIn(value, min, max)) {
    throw new InvalidArgumentError(
      `${path} must be an integer in ${min}..${max}, got ${describe(value)}`,
    );
  }
  // -0 and 0 are equal but encode differently nowhere; normalize anyway so `Object.is` agrees.
  return value === 0 ? 0 : value;
}

/** Whether `value` is a safe integer in `min..max`. Throws nothing. */
function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max;
}

/** The fields of one JSON object, read one by one; {@link end} refuses any left unread. */
export class FieldReader {
  readonly #object: Readonly<Record<string, unknown>>;
  readonly #path: FieldPath;
  /** The names read so far (a dozen at most: a list is cheaper than a set to fill and search). */
  readonly #read: string[] = [];

  /** Reads `value`, which must be a non-array object; `path` names it in errors. Throws `InvalidArgumentError`. */
  constructor(value: unknown, path: FieldPath) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new InvalidArgumentError(`${path} must be an object, got ${describe(value)}`);
    }
    this.#object = value as Readonly<Record<string, unknown>>;
    this.#path = path;
  }

  /** The path of this object itself, for errors. */
  get location(): string {
    return String(this.#path);
  }

  /** The path of this object itself, to hand on (built into text only if an error needs it). */
  get lazyLocation(): FieldPath {
    return this.#path;
  }

  /** The path of field `name`, for errors. */
  path(name: string): string {
    return `${this.#path}.${name}`;
  }

  /** The raw value of a required field. Throws `InvalidArgumentError` if it is missing. */
  value(name: string): unknown {
    if (!Object.hasOwn(this.#object, name)) {
      throw new InvalidArgumentError(`${this.path(name)} is required`);
    }
    this.#read.push(name);
    return this.#object[name];
  }

  /** Whether the object has field `name` (for optional fields, which are then read as usual). */
  has(name: string): boolean {
    return Object.hasOwn(this.#object, name);
  }

  /** A string field checked against `rules`. */
  string(name: string, rules: StringRules): string {
    const value = this.value(name);
    return isAcceptedString(value, rules) ? value : checkString(value, this.path(name), rules);
  }

  /** An integer field in `min..max`. */
  integer(name: string, min: number, max: number): number {
    const value = this.value(name);
    // The path is built only for the error.
    if (isIntegerIn(value, min, max)) return value === 0 ? 0 : value;
    return checkInteger(value, this.path(name), min, max);
  }

  /** An integer in `min..max`, or null. */
  nullableInteger(name: string, min: number, max: number): number | null {
    const value = this.value(name);
    return value === null ? null : checkInteger(value, this.path(name), min, max);
  }

  /** A boolean field. */
  boolean(name: string): boolean {
    const value = this.value(name);
    if (typeof value !== "boolean") {
      throw new InvalidArgumentError(
        `${this.path(name)} must be a boolean, got ${describe(value)}`,
      );
    }
    return value;
  }

  /** A boolean field that may be absent (undefined then). */
  optionalBoolean(name: string): boolean | undefined {
    return Object.hasOwn(this.#object, name) ? this.boolean(name) : undefined;
  }

  /** An integer field in `min..max`, or undefined when absent (for fields added later). */
  optionalInteger(name: string, min: number, max: number): number | undefined {
    return Object.hasOwn(this.#object, name) ? this.integer(name, min, max) : undefined;
  }

  /** A string field that must be one of `choices`. */
  oneOf<T extends string>(name: string, choices: readonly T[]): T {
    const value = this.value(name);
    if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(
        `${this.path(name)} must be one of ${choices.join(", ")}, got ${describe(value)}`,
      );
    }
    return value as T;
  }

  /** An array field of at most `maxItems` items, each read by `readItem` (given its path). */
  array<T>(
    name: string,
    maxItems: number,
    readItem: (item: unknown, path: FieldPath) => T,
  ): readonly T[] {
    const value = this.value(name);
    if (!Array.isArray(value)) {
      throw new InvalidArgumentError(`${this.path(name)} must be an array, got ${describe(value)}`);
    }
    if (value.length > maxItems) {
      throw new TooLargeError(
        `${this.path(name)} has ${value.length} items; the limit is ${maxItems}`,
      );
    }
    const path = new LazyPath(this.#path, name);
    // Indexed, not map: map skips holes, and a hole must be read (as undefined) and refused.
    const items = new Array<T>(value.length);
    for (let i = 0; i < value.length; i++) {
      items[i] = readItem(value[i] as unknown, new LazyPath(path, i));
    }
    return Object.freeze(items);
  }

  /** An object field, read by `readObject` from its own reader (which it must `end`). */
  object<T>(name: string, readObject: (fields: FieldReader) => T): T {
    return readObject(new FieldReader(this.value(name), new LazyPath(this.#path, name)));
  }

  /** An object field, or null. */
  nullableObject<T>(name: string, readObject: (fields: FieldReader) => T): T | null {
    const value = this.value(name);
    return value === null
      ? null
      : readObject(new FieldReader(value, new LazyPath(this.#path, name)));
  }

  /** The names of every field of the object (own, enumerable), for map-like objects. */
  keys(): readonly string[] {
    return Object.keys(this.#object);
  }

  /** Throws `InvalidArgumentError` naming the first field that was not read. */
  end(): void {
    for (const name of Object.keys(this.#object)) {
      if (!this.#read.includes(name)) {
        throw new InvalidArgumentError(`${this.path(name)} is not a known field`);
      }
    }
  }
}
