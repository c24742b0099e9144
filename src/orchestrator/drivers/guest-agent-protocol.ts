/**
 * The line protocol between a node and the Blixard guest's agent (`guest/init.sh`), spoken over a
 * virtio-serial port named {@link GUEST_AGENT_PORT_NAME} (a unix socket on the host). Text lines,
 * so the agent can be a busybox shell loop; payloads in base64, so no byte of a command or its
 * output can break the framing.
 *
 *     node → guest   EXEC <id> <timeoutSeconds> <base64 of the command>
 *     guest → node   BEGIN <id>
 *                    <base64 of the output, any number of lines>
 *                    END <id> <exitCode> <outputBytes>
 *
 * The guest runs the command with `sh -c` (stdin empty, stdout and stderr together), kills it after
 * `timeoutSeconds` (busybox `timeout`: exit code 143), keeps the first
 * {@link MAX_GUEST_EXEC_OUTPUT_BYTES} bytes of its output and says how many there were. Commands
 * run one at a time; an answer whose id is not the one awaited (the answer to a command the node
 * gave up on) is dropped. Anything else on the channel is ignored.
 */
import { MAX_TASK_OUTPUT_BYTES } from "../../statemachine/orchestrator/limits.js";

/** The name of the virtio-serial port the guest agent reads (`/sys/class/virtio-ports/*\/name`). */
export const GUEST_AGENT_PORT_NAME = "org.blixard.agent";

/** The most output bytes of a command the guest sends back (more is cut, and flagged). */
export const MAX_GUEST_EXEC_OUTPUT_BYTES = MAX_TASK_OUTPUT_BYTES;

/** The longest command sent to the guest, in bytes (UTF-8). */
export const MAX_GUEST_EXEC_COMMAND_BYTES = 16 * 1024;

/** The longest line accepted from the guest: base64 lines are 76 characters, END lines short. */
const MAX_LINE_CHARS = 1024;

/** The base64 characters a full output takes (4 per 3 bytes), plus slack for line breaks. */
const MAX_OUTPUT_BASE64_CHARS = Math.ceil(MAX_GUEST_EXEC_OUTPUT_BYTES / 3) * 4 + 4096;

/** What a command did in the guest. */
export interface GuestExecResult {
  /** Its exit code (143 when the guest's timeout killed it). */
  readonly exitCode: number;
  /** Its stdout and stderr together, at most {@link MAX_GUEST_EXEC_OUTPUT_BYTES} (UTF-8, lossy). */
  readonly output: string;
  /** True if it printed more than was kept. */
  readonly truncated: boolean;
}

/** The request line for command `id` (the trailing newline included). Throws nothing. */
export function execRequestLine(id: number, command: string, timeoutSeconds: number): string {
  const payload = Buffer.from(command, "utf8").toString("base64");
  return `EXEC ${id} ${timeoutSeconds} ${payload}\n`;
}

/**
 * Reads the guest's lines and hands over each whole answer. Never throws on any input: a line
 * too long, an answer too large or a malformed END drops what it would have built.
 */
export class GuestAgentReader {
  readonly #decoder = new TextDecoder("utf-8");
  #partial = "";
  /** The answer being read: its id and base64 so far; undefined between answers. */
  #current: { id: number; base64: string[]; chars: number } | undefined;

  /** @param onAnswer called with each complete answer, in order. */
  constructor(private readonly onAnswer: (id: number, result: GuestExecResult) => void) {}

  /** Takes the next bytes from the channel. */
  push(chunk: Uint8Array): void {
    const text = this.#partial + this.#decoder.decode(chunk, { stream: true });
    const lines = text.split("\n");
    const rest = lines.pop() ?? "";
    // A line longer than any the protocol makes is noise: dropped as it grows, not kept.
    this.#partial = rest.length > MAX_LINE_CHARS ? "" : rest;
    for (const line of lines) {
      if (line.length <= MAX_LINE_CHARS) this.#line(line.replace(/\r$/, ""));
    }
  }

  #line(line: string): void {
    const begin = /^BEGIN (\d{1,15})$/.exec(line);
    if (begin !== null) {
      this.#current = { id: Number(begin[1]), base64: [], chars: 0 };
      return;
    }
    const current = this.#current;
    if (current === undefined) return;
    const end = /^END (\d{1,15}) (-?\d{1,10}) (\d{1,15})$/.exec(line);
    if (end !== null) {
      this.#current = undefined;
      if (Number(end[1]) !== current.id) return;
      const bytes = Buffer.from(current.base64.join(""), "base64");
      const size = Number(end[3]);
      this.onAnswer(current.id, {
        exitCode: Number(end[2]),
        output: bytes.subarray(0, MAX_GUEST_EXEC_OUTPUT_BYTES).toString("utf8"),
        truncated: size > MAX_GUEST_EXEC_OUTPUT_BYTES || bytes.length > MAX_GUEST_EXEC_OUTPUT_BYTES,
      });
      return;
    }
    if (!/^[A-Za-z0-9+/=]*$/.test(line)) return;
    current.chars += line.length;
    if (current.chars > MAX_OUTPUT_BASE64_CHARS) {
      // More than the guest may send: this answer cannot be trusted; wait for the next BEGIN.
      this.#current = undefined;
      return;
    }
    current.base64.push(line);
  }
}
