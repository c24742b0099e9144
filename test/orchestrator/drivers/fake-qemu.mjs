// A stand-in for qemu-system-x86_64 in the qemu driver's tests: it reads the QMP socket path from
// its arguments (`-chardev socket,id=qmp0,path=…` with commas doubled), speaks QMP there, and
// behaves as FAKE_QEMU_MODE says:
//   powerdown      obeys system_powerdown (POWERDOWN, SHUTDOWN events, exit 0)
//   quit-only      ignores system_powerdown, obeys quit
//   deaf           negotiates, then answers nothing and ignores SIGTERM
//   crash          exits with code 3 right after the negotiation
//   guest-shutdown the guest powers off by itself right after the negotiation (exit 0)
//   die-at-start   complains on stderr and exits with code 1 before opening its socket
//   migrate        as powerdown, and its live migrations complete at once: query-migrate says
//                  where it listens (127.0.0.1:4444) and that the stream completed, query-status
//                  that the guest runs
// With FAKE_QEMU_QMP_LOG, each QMP command it receives is appended there as a JSON line.
// Its socket appears only after FAKE_QEMU_DELAY_MS (default 50), as a real QEMU's takes a moment.
import { appendFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

const mode = process.env.FAKE_QEMU_MODE ?? "powerdown";
const args = process.argv.slice(2);
if (process.env.FAKE_QEMU_ARGS_FILE)
  writeFileSync(process.env.FAKE_QEMU_ARGS_FILE, JSON.stringify(args));

if (mode === "die-at-start") {
  process.stderr.write(
    "qemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied\n",
  );
  process.exit(1);
}
if (mode === "deaf") process.on("SIGTERM", () => undefined);

const chardev = args.find((a) => a.startsWith("socket,id=qmp0,"));
const path = /path=((?:[^,]|,,)*)/.exec(chardev)[1].replaceAll(",,", ",");
process.stdout.write("fake guest console: booting\n");

const send = (socket, message) => socket.write(`${JSON.stringify(message)}\r\n`);
const event = (name, data) => ({ timestamp: { seconds: 1, microseconds: 0 }, event: name, data });

const server = createServer((socket) => {
  socket.on("error", () => undefined);
  send(socket, { QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } });
  let buffer = "";
  socket.setEncoding("utf8");
  socket.on("data", (text) => {
    buffer += text;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const command = JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      handle(socket, command);
    }
  });
});

const MIGRATE_ANSWERS = {
  "query-migrate": {
    status: "completed",
    "socket-address": [{ type: "inet", host: "127.0.0.1", port: "4444" }],
    downtime: 1,
    "total-time": 2,
    ram: { transferred: 3 },
  },
  "query-status": { status: "running", running: true },
};

function handle(socket, command) {
  const { execute, id } = command;
  if (process.env.FAKE_QEMU_QMP_LOG)
    appendFileSync(process.env.FAKE_QEMU_QMP_LOG, `${JSON.stringify(command)}\n`);
  if (mode === "deaf" && execute !== "qmp_capabilities") return;
  send(socket, { return: (mode === "migrate" && MIGRATE_ANSWERS[execute]) || {}, id });
  if (execute === "qmp_capabilities") {
    if (mode === "crash") setImmediate(() => process.exit(3));
    if (mode === "guest-shutdown") {
      send(socket, event("SHUTDOWN", { guest: true, reason: "guest-shutdown" }));
      setImmediate(() => process.exit(0));
    }
  } else if (execute === "system_powerdown") {
    send(socket, event("POWERDOWN", {}));
    if (mode === "powerdown" || mode === "migrate") {
      send(socket, event("SHUTDOWN", { guest: true, reason: "guest-shutdown" }));
      setImmediate(() => process.exit(0));
    }
  } else if (execute === "quit") {
    send(socket, event("SHUTDOWN", { guest: false, reason: "host-qmp-quit" }));
    setImmediate(() => process.exit(0));
  }
}

setTimeout(() => server.listen(path), Number(process.env.FAKE_QEMU_DELAY_MS ?? 50));
