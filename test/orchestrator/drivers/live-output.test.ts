/** The live output of running task attempts: replay up to the cap, then every chunk, then the end. */
import { describe, expect, it } from "vitest";
import {
  LiveOutputHub,
  type LiveOutputListener,
  type OutputStream,
} from "../../../src/orchestrator/drivers/live-output.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function recorder(): LiveOutputListener & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    output: (stream: OutputStream, chunk: Uint8Array) =>
      log.push(`${stream}:${new TextDecoder().decode(chunk)}`),
    ended: () => log.push("ended"),
  };
}

describe("LiveOutputHub", () => {
  it("replays what was kept (up to the cap per stream), then passes every chunk on uncapped", () => {
    const hub = new LiveOutputHub(4);
    const attempt = hub.open("t", 1);
    attempt.push("stdout", bytes("abc"));
    attempt.push("stdout", bytes("def"));
    attempt.push("stderr", bytes("xy"));
    const late = recorder();
    expect(hub.follow("t", late)?.attempt).toBe(1);
    expect(late.log).toEqual(["stdout:abc", "stdout:d", "stderr:xy"]);
    attempt.push("stdout", bytes("later"));
    attempt.end();
    attempt.push("stdout", bytes("after the end"));
    expect(late.log.slice(3)).toEqual(["stdout:later", "ended"]);
    expect(hub.runningAttempt("t")).toBeUndefined();
    expect(hub.follow("t", recorder())).toBeUndefined();
  });

  it("announces opened attempts; a new attempt ends the followers of the old one", () => {
    const hub = new LiveOutputHub(16);
    const opened: string[] = [];
    const stop = hub.onOpened((id) => opened.push(id));
    hub.open("t", 1);
    const follower = recorder();
    hub.follow("t", follower);
    hub.open("t", 2);
    expect(follower.log).toEqual(["ended"]);
    expect(hub.runningAttempt("t")).toBe(2);
    stop();
    hub.open("u", 1);
    expect(opened).toEqual(["t", "t"]);
  });

  it("stops passing chunks to a follower that stopped", () => {
    const hub = new LiveOutputHub(16);
    const attempt = hub.open("t", 1);
    const follower = recorder();
    hub.follow("t", follower)?.stop();
    attempt.push("stdout", bytes("x"));
    attempt.end();
    expect(follower.log).toEqual([]);
  });
});
