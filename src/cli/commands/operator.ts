/**
 * `blixard operator snapshot save|inspect|restore`: backups of the whole replicated state (kv,
 * orchestrator, ACL, sessions) and new clusters built from them, as etcd's `snapshot save` /
 * `etcdutl snapshot restore` and Nomad's `operator snapshot`.
 */
import { defaultShown } from "../option-defaults.js";
import { join } from "node:path";
import { Option, type Command } from "commander";
import { InvalidArgumentError } from "../../common/errors.js";
import { parseInitialMembers, type InitialMember } from "../node/members.js";
import { readNodeConfig, resolveNodeConfig, writeNodeConfig } from "../node/node-config.js";
import { seedRaftDir } from "../node/seed-raft-dir.js";
import { readBackupFile, writeBackupFile, type BackupHeader } from "../operator/backup-file.js";
import { formatHostPort, parseHostPort, parsePositiveInt, type HostPort } from "../options.js";
import { formatTable } from "../table.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

interface RestoreOptions {
  readonly dataDir: string;
  readonly id: number;
  readonly peerListen: HostPort;
  readonly apiListen: HostPort;
  readonly initialMembers?: InitialMember[];
  readonly clusterId?: string;
  readonly json?: boolean;
}

/** Registers the `operator` commands on `program`. */
export function registerOperatorCommands(program: Command): void {
  const operator = program
    .command("operator")
    .description("operate a cluster: backups and restores");
  const snapshot = operator
    .command("snapshot")
    .description("back up the whole cluster state to a file, inspect one, restore from one");

  withClientOptions(
    snapshot
      .command("save")
      .description(
        "save a consistent snapshot of the whole replicated state (kv, orchestrator, ACL) to " +
          "FILE: taken after a linearizable read, it holds every write acknowledged before it",
      )
      .argument("<file>", "where to write the backup (written atomically, mode 0600)"),
  ).action(async (file: string, options: ClientOptions) => {
    const backup = await clientFrom(options).operator.snapshot(
      options.timeout === undefined ? {} : { timeoutMs: options.timeout },
    );
    const header: BackupHeader = {
      format: 1,
      clusterId: backup.clusterId,
      index: backup.index,
      term: backup.term,
      takenBy: backup.takenBy,
      version: backup.version,
      createdAt: new Date().toISOString(),
      members: backup.members,
      dataBytes: backup.data.byteLength,
      dataSha256: backup.sha256,
    };
    const bytes = await writeBackupFile(file, { header, data: backup.data });
    if (options.json === true) printJson({ file, fileBytes: bytes, ...header });
    else {
      process.stdout.write(
        `saved the state at index ${backup.index} (term ${backup.term}) of cluster ` +
          `${backup.clusterId} to ${file} (${bytes} bytes, data SHA-256 ${backup.sha256})\n`,
      );
    }
  });

  snapshot
    .command("inspect")
    .description("check a backup file's checksums and show what it holds")
    .argument("<file>", "the backup file")
    .option("--json", "print JSON for scripts")
    .action(async (file: string, options: { json?: boolean }) => {
      const { header } = await readBackupFile(file);
      if (options.json === true) {
        printJson(header);
        return;
      }
      process.stdout.write(
        formatTable(
          ["FIELD", "VALUE"],
          [
            ["cluster", header.clusterId],
            ["index", String(header.index)],
            ["term", String(header.term)],
            ["taken by", `node ${header.takenBy} (version ${header.version})`],
            ["created", header.createdAt],
            ["members", header.members.map((m) => `${m.id} (${m.suffrage})`).join(", ")],
            ["data bytes", String(header.dataBytes)],
            ["data SHA-256", header.dataSha256],
            ["checksums", "ok"],
          ],
        ),
      );
    });

  snapshot
    .command("restore")
    .summary("build a data directory of a new cluster from a backup")
    .description(
      "build the data directory of one member of a new cluster from a backup FILE. For a\n" +
        "multi-member cluster run it once per member with the same FILE and the same\n" +
        "--initial-members, then start every member with `blixard node start --data-dir DIR`.\n" +
        "Without --initial-members the new cluster is this one node. Put the node's TLS\n" +
        "certificate in DIR/tls as for any first start.",
    )
    .argument("<file>", "the backup file")
    .requiredOption("--data-dir <dir>", "the new node's data directory (empty or only tls/)")
    .requiredOption("--id <n>", "the new node's id", parsePositiveInt)
    .requiredOption("--peer-listen <host:port>", "its peer listen address", parseHostPort)
    .requiredOption("--api-listen <host:port>", "its API listen address", parseHostPort)
    .option(
      "--initial-members <list>",
      "the new cluster's members: ID=PEER_HOST:PORT@API_HOST:PORT,...",
      parseInitialMembers,
    )
    .addOption(
      defaultShown(new Option("--cluster-id <name>", "the new cluster's id"), "the backup's"),
    )
    .option("--json", "print JSON for scripts")
    .action(async (file: string, options: RestoreOptions) => {
      process.umask(0o077);
      const { header, data } = await readBackupFile(file);
      if ((await readNodeConfig(options.dataDir)) !== undefined) {
        throw new InvalidArgumentError(
          `${options.dataDir} already belongs to a node (it has node.json); restore into a new directory`,
        );
      }
      const { config } = resolveNodeConfig(undefined, {
        dataDir: options.dataDir,
        id: options.id,
        clusterId: options.clusterId ?? header.clusterId,
        peerListen: options.peerListen,
        apiListen: options.apiListen,
        ...(options.initialMembers === undefined ? {} : { initialMembers: options.initialMembers }),
      });
      const voters = config.initialMembers.map((m) => m.id);
      await seedRaftDir(join(options.dataDir, "raft"), {
        voters,
        index: header.index,
        term: header.term,
        data,
      });
      // Written last: a directory with a raft log but no node.json refuses to start.
      await writeNodeConfig(options.dataDir, config);
      const summary = {
        dataDir: options.dataDir,
        id: config.id,
        clusterId: config.clusterId,
        members: voters,
        index: header.index,
        term: header.term,
      };
      if (options.json === true) printJson(summary);
      else {
        process.stdout.write(
          `restored the state at index ${header.index} into ${options.dataDir} as node ` +
            `${config.id} of a new cluster ${config.clusterId} (members ${voters.join(", ")}, ` +
            `peer ${formatHostPort(config.peerListen)}); start it with ` +
            `\`blixard node start --data-dir ${options.dataDir}\`\n`,
        );
      }
    });
}
