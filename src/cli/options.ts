/**
 * Parsers for flag values. Each throws commander's `InvalidArgumentError`, so a bad value is a
 * usage error (exit code 64) with commander's message naming the flag.
 */
import { InvalidArgumentError } from "commander";
import { LOG_LEVELS, type CliLogLevel } from "./log.js";

/** A `host:port` listen or peer address. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port` (`[::1]:7001` for IPv6); port 0 means "any free port". */
export function parseHostPort(value: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new InvalidArgumentError(`"${value}" is not host:port`);
  }
  return { host, port };
}

/** `host:port` of an address, bracketing IPv6 hosts. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Parses a positive integer (ids, counts, revisions). */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  }
  return n;
}

/** Parses an integer ≥ 0 (durations where 0 turns something off). */
export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`"${value}" is not an integer of 0 or more`);
  }
  return n;
}

/** Parses a port number, 0 allowed. */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) {
    throw new InvalidArgumentError(`"${value}" is not a port in 0..65535`);
  }
  return n;
}

/** Parses a log level. */
export function parseLogLevel(value: string): CliLogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`"${value}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  return value as CliLogLevel;
}

/** Parses a comma-separated list of API base URLs (`host:port` gets `https://`: secure by default). */
export function parseEndpoints(value: string): string[] {
  const endpoints = value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")
    .map((e) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? e : `https://${e}`));
  if (endpoints.length === 0) throw new InvalidArgumentError("give at least one endpoint");
  for (const e of endpoints) {
    if (!URL.canParse(e)) throw new InvalidArgumentError(`"${e}" is not a URL`);
  }
  return endpoints;
}

/** Parses a yes/no setting: `true`, `1`, `yes`, `on` or `false`, `0`, `no`, `off`. */
export function parseSwitch(value: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(normalized)) return true;
  if (["false", "0", "no", "off"].includes(normalized)) return false;
  throw new InvalidArgumentError(`"${value}" is not a yes/no value (true, false, 1, 0, yes, no)`);
}

/** Milliseconds per duration unit of {@link parseDuration}. */
const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses a duration into ms: a number with a unit (`500ms`, `30s`, `5m`, `2h`, `1d`), several in
 * a row (`1h30m`), or `0`. A bare number other than 0 is refused: "5" could mean seconds or
 * minutes.
 */
export function parseDuration(value: string): number {
  const text = value.trim();
  if (text === "0") return 0;
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (text === "" || parts.map((part) => part[0]).join("") !== text) {
    throw new InvalidArgumentError(
      `"${value}" is not a duration: write a number and a unit, e.g. 30s, 5m, 1h30m (units ms, s, m, h, d)`,
    );
  }
  let ms = 0;
  for (const [, amount, unit] of parts) {
    ms += Number(amount) * (DURATION_UNITS_MS[unit as string] as number);
  }
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`"${value}" is too long`);
  return ms;
}
