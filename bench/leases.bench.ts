/**
 * The leader's cost of keeping 10 000 leases alive: the lessor's sweep every 100 ms over every
 * lease, plus keep-alives of every lease every third of its TTL in batches of 1000 ids (the
 * work of `POST /v1/leases/keepalive` past HTTP and the shared ReadIndex round). Runs a span of
 * leader time as fast as it can and reports the CPU it took per second of leader time, i.e.
 * the share of one core. Prints numbers; asserts nothing.
 *
 *   npm run bench:leases [-- --leases 10000 --ttl-ms 10000 --seconds 60]
 */
import { parseArgs } from "node:util";
import { Lessor } from "../src/node/lessor.js";
import { ClusterStateMachine } from "../src/statemachine/cluster/cluster-state-machine.js";
import { encodeKvCommand } from "../src/statemachine/kv/command-codec.js";
import { encodeCommandEnvelope } from "../src/statemachine/session/envelope.js";

const { values } = parseArgs({
  options: {
    leases: { type: "string", default: "10000" },
    "ttl-ms": { type: "string", default: "10000" },
    seconds: { type: "string", default: "60" },
  },
});
const leaseCount = Number(values.leases);
const ttlMs = Number(values["ttl-ms"]);
const seconds = Number(values.seconds);
const SWEEP_MS = 100;
const BATCH = 1000;

const machine = new ClusterStateMachine();
let index = 0;
for (let i = 0; i < leaseCount; i++) {
  machine.apply({
    index: ++index,
    term: 1,
    data: encodeCommandEnvelope({
      proposedAtMs: 0,
      payload: encodeKvCommand({ op: "leaseGrant", ttlMs }),
    }),
  });
}
let nowMs = 0;
let expired = 0;
const lessor = new Lessor({
  port: {
    leaderTerm: () => 1,
    forEachLease: (visit) => machine.forEachLease(visit),
    leaseTtlMs: (id) => machine.lease(id)?.ttlMs,
    leaseCount: () => machine.leaseCount,
    proposeRevoke: async (ids) => {
      expired += ids.length;
    },
  },
  clock: { now: () => nowMs, setTimer: () => ({ cancel: () => undefined }) },
});
const ids = Array.from({ length: leaseCount }, (_, i) => i + 1);
const keepAliveEveryMs = Math.floor(ttlMs / 3);
const before = process.cpuUsage();
const wallStart = performance.now();
let renewals = 0;
let nextKeepAliveMs = 0;
for (nowMs = 0; nowMs <= seconds * 1000; nowMs += SWEEP_MS) {
  if (nowMs >= nextKeepAliveMs) {
    for (let start = 0; start < ids.length; start += BATCH) {
      renewals += lessor.renew(ids.slice(start, start + BATCH), nowMs, 1).length;
    }
    nextKeepAliveMs += keepAliveEveryMs;
  }
  lessor.sweep();
}
const cpu = process.cpuUsage(before);
const cpuMs = (cpu.user + cpu.system) / 1000;
console.log(
  JSON.stringify({
    leases: leaseCount,
    ttlMs,
    leaderSeconds: seconds,
    sweeps: (seconds * 1000) / SWEEP_MS + 1,
    renewals,
    expiredWrongly: expired,
    cpuMs: Math.round(cpuMs),
    wallMs: Math.round(performance.now() - wallStart),
    shareOfOneCorePercent: Number(((cpuMs / (seconds * 1000)) * 100).toFixed(2)),
  }),
);
