/**
 * `blixard tls init|issue`: the cluster's certificate authority and the certificates it signs.
 * See README, "Security".
 */
import { defaultShown } from "../option-defaults.js";
import { DEFAULT_CA_VALIDITY_DAYS, DEFAULT_CERT_VALIDITY_DAYS } from "../../security/issue.js";
import { Option, type Command } from "commander";
import { InvalidArgumentError } from "commander";
import { DEFAULT_CLUSTER_ID } from "../node/node-config.js";
import { parsePositiveInt } from "../options.js";
import { printJson } from "./client-options.js";

interface InitOptions {
  readonly dir: string;
  readonly clusterId: string;
  readonly days?: number;
  readonly force?: boolean;
  readonly json?: boolean;
}

interface IssueCommandOptions {
  readonly dir: string;
  readonly node?: number;
  readonly client?: string;
  readonly host: string[];
  readonly out?: string;
  readonly days?: number;
  readonly force?: boolean;
  readonly json?: boolean;
}

/** Collects a repeatable, comma-separable flag. */
function collect(value: string, previous: string[]): string[] {
  const parts = value
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 0) throw new InvalidArgumentError("give a host name or IP address");
  return [...previous, ...parts];
}

/** Registers the `tls` commands on `program`. */
export function registerTlsCommands(program: Command): void {
  const tls = program
    .command("tls")
    .summary("create the cluster's CA and issue node and client certificates")
    .description(
      "create the cluster's certificate authority and issue node and client certificates.\n\n" +
        "  blixard tls init --dir ./pki --cluster-id prod\n" +
        "  blixard tls issue --dir ./pki --node 1 --host 10.0.0.1 --host node1.example.com\n" +
        "  blixard tls issue --dir ./pki --client admin\n\n" +
        "Keep ca-key.pem on the operator's machine; give each node ca.pem, node-<id>.pem and\n" +
        "node-<id>-key.pem (in <data-dir>/tls/, or through --tls-ca, --tls-cert, --tls-key).",
    );

  tls
    .command("init")
    .description("create a CA: <dir>/ca.pem (give it to every node and client) and ca-key.pem")
    .requiredOption("--dir <dir>", "where to write the CA (created 0700; files 0600)")
    .option(
      "--cluster-id <id>",
      "the cluster the CA signs for: the same --cluster-id the nodes use",
      DEFAULT_CLUSTER_ID,
    )
    .addOption(
      defaultShown(
        new Option("--days <n>", "validity in days").argParser(parsePositiveInt),
        DEFAULT_CA_VALIDITY_DAYS,
      ),
    )
    .option("--force", "replace an existing CA (what it signed is no longer trusted)")
    .option("--json", "print the written paths as JSON")
    .action(async (options: InitOptions) => {
      const { initCaDir } = await import("../tls/ca-dir.js");
      const written = await initCaDir(options.dir, {
        clusterId: options.clusterId,
        ...(options.days === undefined ? {} : { validityDays: options.days }),
        ...(options.force === undefined ? {} : { force: options.force }),
      });
      if (options.json === true) {
        printJson({ clusterId: options.clusterId, caCert: written.cert, caKey: written.key });
        return;
      }
      process.stdout.write(
        `CA for cluster ${options.clusterId} created:\n` +
          `  ${written.cert}   (public: give it to every node and client)\n` +
          `  ${written.key}   (secret: keep it here; it signs certificates)\n` +
          "Next: blixard tls issue --dir " +
          `${options.dir} --node <id> --host <address the node is reached at>\n`,
      );
    });

  tls
    .command("issue")
    .description(
      "issue a node certificate (--node ID: names node-<id>.<cluster>.blixard plus each --host)\n" +
        "or a client certificate (--client NAME: its common name is NAME), signed by the CA",
    )
    .requiredOption("--dir <dir>", "the CA directory (ca.pem, ca-key.pem)")
    .option("--node <id>", "issue node <id>'s certificate", parsePositiveInt)
    .option("--client <name>", "issue a client certificate for <name>")
    .option(
      "--host <host>",
      "a DNS name or IP address the node serves under (repeatable, or comma-separated)",
      collect,
      [],
    )
    .addOption(
      defaultShown(
        new Option("--out <dir>", "where to write the certificate, key and a copy of ca.pem"),
        "--dir",
      ),
    )
    .addOption(
      defaultShown(
        new Option("--days <n>", "validity in days").argParser(parsePositiveInt),
        DEFAULT_CERT_VALIDITY_DAYS,
      ),
    )
    .option("--force", "replace existing files of the same name")
    .option("--json", "print the written paths as JSON")
    .action(async (options: IssueCommandOptions, command: Command) => {
      if ((options.node === undefined) === (options.client === undefined)) {
        command.error("error: give exactly one of --node <id> or --client <name>", {
          exitCode: 64,
          code: "blixard.usage",
        });
      }
      if (options.client !== undefined && options.host.length > 0) {
        command.error("error: --host is for node certificates", {
          exitCode: 64,
          code: "blixard.usage",
        });
      }
      const { issueClientInto, issueNodeInto } = await import("../tls/ca-dir.js");
      const issueOptions = {
        ...(options.out === undefined ? {} : { out: options.out }),
        ...(options.days === undefined ? {} : { validityDays: options.days }),
        ...(options.force === undefined ? {} : { force: options.force }),
      };
      const written =
        options.node !== undefined
          ? await issueNodeInto(
              options.dir,
              { nodeId: options.node, hosts: options.host },
              issueOptions,
            )
          : await issueClientInto(options.dir, options.client ?? "", issueOptions);
      if (options.json === true) {
        printJson(written);
        return;
      }
      const what =
        options.node !== undefined ? `node ${options.node}` : `client ${options.client ?? ""}`;
      const next =
        options.node !== undefined
          ? `Start the node with --tls-ca ${written.ca} --tls-cert ${written.cert} ` +
            `--tls-key ${written.key}\n(or copy the three files into <data-dir>/tls/).\n`
          : `Use it with --ca ${written.ca} --cert ${written.cert} --key ${written.key}\n` +
            "(or BLIXARD_CACERT, BLIXARD_CERT, BLIXARD_KEY).\n";
      process.stdout.write(
        `Certificate for ${what} issued:\n  ${written.cert}\n  ${written.key}\n  ${written.ca}\n${next}`,
      );
    });
}
