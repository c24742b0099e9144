/**
 * `blixard cluster status|members|add|promote|replace|remove|transfer-leader`: the cluster as one node
 * sees it, and membership changes (sent to any endpoint; followers forward them to the leader).
 */
import type { Command } from "commander";
import type { StatusResponse } from "../../api/schema/index.js";
import {
  DEFAULT_TIMEOUT_MS,
  type BlixardClient,
  type ClusterConfig,
  type Members,
} from "../../client/index.js";
import { UnavailableError } from "../../common/errors.js";
import { formatHostPort, parseHostPort, parsePositiveInt, type HostPort } from "../options.js";
import { apiUrl } from "../node/members.js";
import { formatTable } from "../table.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";
import {
  fillFromLeader,
  leaderToAsk,
  versionNotes,
  type FilledMembers,
} from "./member-versions.js";

interface AddOptions extends ClientOptions {
  readonly id: number;
  readonly peer: HostPort;
  readonly api: string;
}

interface PromoteOptions extends ClientOptions {
  readonly wait: boolean;
}

/** How long `cluster promote` waits for a learner to catch up when no --timeout is given. */
export const DEFAULT_PROMOTE_WAIT_MS = 60_000;

/** Registers the `cluster` commands on `program`. */
export function registerClusterCommands(program: Command): void {
  const cluster = program
    .command("cluster")
    .description("inspect the cluster and change its membership");

  withClientOptions(
    cluster
      .command("status")
      .description("raft status of the answering node, then of every member (asked each)"),
    `${DEFAULT_TIMEOUT_MS}; each member's answer ${MEMBER_STATUS_TIMEOUT_MS}`,
  ).action(async (options: ClientOptions) => {
    const client = clientFrom(options);
    const s = await client.status();
    const members = await memberStatuses(client, options);
    if (options.json === true) {
      printJson({ ...s, members });
      return;
    }
    const rows: [string, string][] = [
      ["node", String(s.id)],
      [
        "version",
        `${s.version} (peer protocol ${s.protocolVersion}; talks to protocols ${s.minProtocolVersion}..${s.protocolVersion})`,
      ],
      ["cluster protocol", clusterProtocolText(s.clusterProtocolVersion)],
      ["role", s.role],
      ["term", String(s.term)],
      ["leader", s.leader === null ? "(none)" : String(s.leader)],
      ["commit index", String(s.commitIndex)],
      ["applied index", String(s.appliedIndex)],
      ["last index", String(s.lastIndex)],
      ["snapshot index", String(s.snapshotIndex)],
      ...configRows(s.config),
    ];
    process.stdout.write(formatTable(["FIELD", "VALUE"], rows));
    if (s.progress.length > 0) {
      process.stdout.write("\n");
      const learners = new Set([...s.config.learners, ...s.config.learnersNext]);
      process.stdout.write(
        formatTable(
          ["PEER", "SUFFRAGE", "MATCH", "NEXT", "STATE", "ACTIVE"],
          s.progress.map((p) => [
            String(p.id),
            learners.has(p.id) ? "learner" : "voter",
            String(p.match),
            String(p.next),
            p.state,
            p.recentActive ? "yes" : "no",
          ]),
        ),
      );
    }
    process.stdout.write("\n");
    process.stdout.write(
      formatTable(
        ["MEMBER", "ROLE", "TERM", "COMMIT", "APPLIED", "VERSION", "REACHABLE"],
        members.map((m) =>
          m.status === undefined
            ? [String(m.id), "?", "?", "?", "?", "?", `no (${m.error ?? "no address"})`]
            : [
                String(m.id),
                m.status.role,
                String(m.status.term),
                String(m.status.commitIndex),
                String(m.status.appliedIndex),
                `${m.status.version} (protocol ${m.status.protocolVersion})`,
                "yes",
              ],
        ),
      ),
    );
  });

  withClientOptions(
    cluster
      .command("members")
      .description(
        "members, suffrage, addresses and versions (as the answering node last heard; versions " +
          "it has not heard, as the leader last heard)",
      ),
    `${DEFAULT_TIMEOUT_MS}; the leader's answer ${MEMBER_STATUS_TIMEOUT_MS}`,
  ).action(async (options: ClientOptions) => {
    const answer = await clientFrom(options).members();
    const { filled, leaderNotAsked } = await withLeaderVersions(answer, options);
    const m = filled.members;
    if (options.json === true) {
      printJson(m);
      return;
    }
    const rows = m.members.map((member) => [
      String(member.id),
      member.suffrage + (member.outgoing ? " (outgoing)" : ""),
      member.leader ? "*" : "",
      member.raftAddress ?? "?",
      member.apiAddress ?? "?",
      member.version ?? "unknown",
      member.protocolVersion === undefined ? "unknown" : String(member.protocolVersion),
    ]);
    process.stdout.write(
      formatTable(["ID", "SUFFRAGE", "LEADER", "PEER", "API", "VERSION", "PROTOCOL"], rows),
    );
    if (m.joint) process.stdout.write("(a joint configuration change is under way)\n");
    for (const note of versionNotes(filled, leaderNotAsked)) process.stdout.write(`${note}\n`);
  });

  withClientOptions(
    cluster
      .command("add")
      .summary("add a node as a learner")
      .description(
        "add a node as a learner: it receives the log but does not vote; promote it once it " +
          "has caught up. (`node start --join` has a new node add itself instead.)",
      )
      .requiredOption("--id <n>", "the new node's id", parsePositiveInt)
      .requiredOption("--peer <host:port>", "where its peer transport listens", parseHostPort)
      .requiredOption("--api <host:port|url>", "its API address", apiUrl),
  ).action(async (options: AddOptions) => {
    const config = await clientFrom(options).addLearner({
      id: options.id,
      raftAddress: formatHostPort(options.peer),
      apiAddress: options.api,
    });
    printChange(options, `node ${options.id} added as a learner`, config);
  });

  withClientOptions(
    cluster
      .command("promote")
      .summary("make learner ID a voter (waits for it to catch up)")
      .description("make learner ID a voter; waits (within --timeout) for it to catch up")
      .argument("<id>", "the learner's id", parsePositiveInt)
      .option("--no-wait", "fail at once (UNAVAILABLE) if the learner is behind"),
    DEFAULT_PROMOTE_WAIT_MS,
  ).action(async (id: number, options: PromoteOptions) => {
    const config = await whenCaughtUp(options, (client, timeoutMs) =>
      client.promote(id, { timeoutMs }),
    );
    printChange(options, `node ${id} promoted to voter`, config);
  });

  withClientOptions(
    cluster
      .command("replace")
      .summary("promote learner NEW and remove member OLD in one joint-consensus change")
      .description(
        "promote learner NEW and remove member OLD in one change, through a joint configuration " +
          "(both the old and the new voter sets must agree until the cluster leaves it, on its " +
          "own); waits (within --timeout) for NEW to catch up. Prints the joint " +
          "configuration; stop OLD's process afterwards.",
      )
      .argument("<old>", "the member to remove", parsePositiveInt)
      .argument("<new>", "the learner to promote", parsePositiveInt)
      .option("--no-wait", "fail at once (UNAVAILABLE) if the learner is behind"),
    DEFAULT_PROMOTE_WAIT_MS,
  ).action(async (old: number, replacement: number, options: PromoteOptions) => {
    const config = await whenCaughtUp(options, (client, timeoutMs) =>
      client.replaceMember(old, replacement, { timeoutMs }),
    );
    printChange(options, `node ${replacement} replaces node ${old}`, config);
  });

  withClientOptions(
    cluster
      .command("remove")
      .description("remove member ID (voter or learner); stop its process afterwards")
      .argument("<id>", "the member's id", parsePositiveInt),
  ).action(async (id: number, options: ClientOptions) => {
    const config = await clientFrom(options).removeMember(id);
    printChange(options, `node ${id} removed`, config);
  });

  withClientOptions(
    cluster
      .command("transfer-leader")
      .description("hand leadership to voter ID; returns once it leads")
      .argument("<id>", "the voter's id", parsePositiveInt),
  ).action(async (id: number, options: ClientOptions) => {
    await clientFrom(options).transferLeader(id);
    if (options.json === true) printJson({ leader: id });
    else process.stdout.write(`node ${id} is the leader\n`);
  });
}

/** How long `cluster status` waits for each member's own answer (unless --timeout says). */
export const MEMBER_STATUS_TIMEOUT_MS = 2000;
/**
 * Retries of one member's probe. The client's default (6, backing off to 800 ms) spent about
 * 1.6 s retrying a refused connection to a stopped member before `cluster status` said so; one
 * retry still rides out a connection reset by a member that is up.
 */
const MEMBER_PROBE_RETRIES = 1;

/** One member's own status, or why it did not answer. */
interface MemberStatus {
  readonly id: number;
  readonly apiAddress?: string;
  readonly status?: StatusResponse;
  readonly error?: string;
}

/**
 * Fills the versions the answering node has not heard from the leader's own members list (see
 * member-versions.ts). Throws nothing: a leader that does not answer leaves the gaps, and why.
 */
async function withLeaderVersions(
  answer: Members,
  options: ClientOptions,
): Promise<{ filled: FilledMembers; leaderNotAsked?: string }> {
  const leader = leaderToAsk(answer);
  if (leader === undefined) return { filled: fillFromLeader(answer, undefined) };
  if ("notAsked" in leader) {
    return { filled: fillFromLeader(answer, undefined), leaderNotAsked: leader.notAsked };
  }
  const timeoutMs = options.timeout ?? MEMBER_STATUS_TIMEOUT_MS;
  try {
    const leaderAnswer = await clientFrom(
      { ...options, endpoints: [leader.apiAddress], timeout: timeoutMs },
      { retries: MEMBER_PROBE_RETRIES },
    ).members({ timeoutMs });
    return { filled: fillFromLeader(answer, leaderAnswer) };
  } catch (error) {
    return {
      filled: fillFromLeader(answer, undefined),
      leaderNotAsked: (error as Error).message,
    };
  }
}

/** Asks every member of the configuration for its own status, in parallel. Throws nothing. */
async function memberStatuses(
  client: BlixardClient,
  options: ClientOptions,
): Promise<MemberStatus[]> {
  const { members } = await client.members();
  return Promise.all(
    members.map(async (m): Promise<MemberStatus> => {
      if (m.apiAddress === undefined) return { id: m.id };
      try {
        const status = await clientFrom(
          {
            ...options,
            endpoints: [m.apiAddress],
            timeout: options.timeout ?? MEMBER_STATUS_TIMEOUT_MS,
          },
          { retries: MEMBER_PROBE_RETRIES },
        ).status({ timeoutMs: options.timeout ?? MEMBER_STATUS_TIMEOUT_MS });
        return { id: m.id, apiAddress: m.apiAddress, status };
      } catch (error) {
        return { id: m.id, apiAddress: m.apiAddress, error: (error as Error).message };
      }
    }),
  );
}

/** Rows describing a configuration: voters, learners and, while joint, the outgoing half. */
function configRows(config: ClusterConfig): [string, string][] {
  const list = (ids: readonly number[]): string => (ids.length === 0 ? "-" : ids.join(", "));
  const joint = config.votersOutgoing.length > 0;
  return [
    ["voters", list(config.voters)],
    ["learners", list(config.learners)],
    ...(joint
      ? ([
          ["joint", "yes (both halves must agree)"],
          ["outgoing voters", list(config.votersOutgoing)],
          ["learners next", list(config.learnersNext)],
        ] as [string, string][])
      : ([["joint", "no"]] as [string, string][])),
  ];
}

function printChange(options: ClientOptions, headline: string, config: ClusterConfig): void {
  if (options.json === true) {
    printJson({ config });
    return;
  }
  process.stdout.write(`${headline}\n${formatTable(["CONFIG", ""], configRows(config))}`);
}

/** Runs a change that promotes a learner, retrying while the leader says it is still behind. */
async function whenCaughtUp(
  options: PromoteOptions,
  change: (client: BlixardClient, timeoutMs: number) => Promise<ClusterConfig>,
): Promise<ClusterConfig> {
  const timeoutMs = options.timeout ?? DEFAULT_PROMOTE_WAIT_MS;
  const client = clientFrom({ ...options, timeout: timeoutMs });
  const end = performance.now() + timeoutMs;
  const tty = process.stderr.isTTY;
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let waited = 0;
  try {
    for (;;) {
      try {
        return await change(client, Math.max(1, Math.round(end - performance.now())));
      } catch (error) {
        const behind = error instanceof UnavailableError && /behind/.test(error.message);
        if (!behind || !options.wait || performance.now() + 250 > end) throw error;
        if (tty) {
          process.stderr.write(`\r${frames[waited % frames.length] ?? ""} ${error.message}`);
        } else if (waited === 0) {
          process.stderr.write(`waiting: ${error.message}\n`);
        }
        waited++;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } finally {
    if (tty && waited > 0) process.stderr.write("\r\x1b[K");
  }
}

/** What the cluster's protocol version means for an operator. */
function clusterProtocolText(version: number): string {
  return version >= 2
    ? `${version} (every member upgraded; older releases are refused)`
    : `${version} (followers forward writes over HTTP until every member speaks 2)`;
}
