/** `blixard cluster status|members`: the cluster as one node sees it. */
import type { Command } from "commander";
import { formatTable } from "../table.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

/** Registers the `cluster` commands on `program`. */
export function registerClusterCommands(program: Command): void {
  const cluster = program
    .command("cluster")
    .description(
      "inspect the cluster (add/promote/remove/transfer-leader: use the HTTP API for now)",
    );

  withClientOptions(
    cluster.command("status").description("raft status of the answering node"),
  ).action(async (options: ClientOptions) => {
    const s = await clientFrom(options).status();
    if (options.json === true) {
      printJson(s);
      return;
    }
    const rows: [string, string][] = [
      ["node", String(s.id)],
      ["role", s.role],
      ["term", String(s.term)],
      ["leader", s.leader === null ? "(none)" : String(s.leader)],
      ["commit index", String(s.commitIndex)],
      ["applied index", String(s.appliedIndex)],
      ["last index", String(s.lastIndex)],
      ["snapshot index", String(s.snapshotIndex)],
      ["voters", s.config.voters.join(", ")],
      ["learners", s.config.learners.join(", ") || "-"],
      ["joint", s.joint ? "yes" : "no"],
    ];
    process.stdout.write(formatTable(["FIELD", "VALUE"], rows));
  });

  withClientOptions(
    cluster.command("members").description("members, suffrage and addresses"),
  ).action(async (options: ClientOptions) => {
    const m = await clientFrom(options).members();
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
    ]);
    process.stdout.write(formatTable(["ID", "SUFFRAGE", "LEADER", "PEER", "API"], rows));
  });
}
