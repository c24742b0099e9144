/**
 * Live migration over mutual TLS with the nodes' own certificates (QEMU's `tls-creds-x509`, read
 * from the directory `qemu-tls-dir.ts` writes).
 *
 * - **Target.** {@link addServerTls} gives its QEMU a server endpoint that verifies the peer
 *   (`verify-peer`: the source must present a certificate the cluster's CA signed) and an
 *   `authz-list` that lets in only the certificate of the node that sends the VM (subject
 *   `CN=node-<source>.<cluster>.blixard,O=blixard`; any other node, and a client certificate of
 *   the same CA, which carries an `OU`, are refused). The memory stream
 *   (`migrate-set-parameters` before `migrate-incoming`) and the disk's NBD server
 *   (`nbd-server-start`) both use them.
 * - **Source.** {@link addClientTls} gives its QEMU a client endpoint, and the name the target
 *   must prove: the target node's identity name, `node-<id>.<cluster>.blixard`, which its
 *   certificate carries as a DNS name. Both the memory stream (`tls-hostname`) and the disk's
 *   NBD connection (`blockdev-add` `tls-hostname`) check it, so guest memory and disk go only to
 *   the node the cluster chose.
 *
 * QEMU reads the files when the object is added, so a file it cannot use fails the migration
 * at once, with QEMU's words (which name the file).
 */
import { UnavailableError } from "../../common/errors.js";
import { IDENTITY_DNS_SUFFIX, nodeIdentityName } from "../../security/names.js";
import type { QmpClient } from "./qmp.js";
import { QEMU_TLS_FILES } from "./qemu-tls-dir.js";

/** How a node's QEMUs secure their live migrations. */
export interface MigrationTls {
  /** The directory of QEMU's x509 files (see `writeQemuTlsDir`). */
  readonly dir: string;
  /** This node's cluster: node identity names are `node-<id>.<cluster>.blixard`. */
  readonly clusterId: string;
}

/** The objects a target's QEMU checks the source with. */
export interface ServerTls {
  /** The `tls-creds-x509` object's id. */
  readonly creds: string;
  /** The `authz-list` object's id. */
  readonly authz: string;
}

/** The objects a source's QEMU authenticates the target with. */
export interface ClientTls {
  /** The `tls-creds-x509` object's id. */
  readonly creds: string;
  /** The name the target's certificate must carry: its node identity name. */
  readonly hostname: string;
}

/** Object ids of their own per migration: a failed attempt's leftovers never block the next. */
let objects = 0;

/**
 * The subject every node certificate of `clusterId` has, as QEMU's TLS layer (GnuTLS) prints it,
 * as a glob; see `security/issue.ts` for the subjects issued. A client certificate's subject
 * (`CN=<name>,OU=<cluster>,O=blixard`) never matches: it ends in the `OU`, and a cluster id has
 * no dots.
 */
export function nodeSubjectPattern(clusterId: string): string {
  return `CN=node-*.${clusterId}.${IDENTITY_DNS_SUFFIX},O=blixard`;
}

/**
 * Adds a `tls-creds-x509` object reading `tls.dir`.
 * @throws UnavailableError naming the directory and QEMU's reason when QEMU cannot use a file.
 */
async function addCreds(
  qmp: QmpClient,
  tls: MigrationTls,
  endpoint: "server" | "client",
  id: string,
): Promise<void> {
  try {
    await qmp.execute("object-add", {
      "qom-type": "tls-creds-x509",
      id,
      dir: tls.dir,
      endpoint,
      "verify-peer": true,
    });
  } catch (error) {
    throw new UnavailableError(
      `QEMU could not load this node's TLS files for the migration from ${tls.dir} ` +
        `(${Object.values(QEMU_TLS_FILES).join(", ")}): ${(error as Error).message}. They are ` +
        "copies of the node's CA, certificate and key, written at each start: check those " +
        "(`blixard tls issue --node <id>` makes new ones) and restart the node",
      { cause: error },
    );
  }
}

/** The subject of node `nodeId`'s certificate, as QEMU's TLS layer prints it. */
function nodeSubject(clusterId: string, nodeId: number): string {
  return `CN=${nodeIdentityName(clusterId, nodeId)},O=blixard`;
}

/**
 * Gives a target's QEMU the objects that check the source: see the module comment. With
 * `sourceNodeId` only that node's certificate is admitted; without, any node's of the cluster.
 * @throws UnavailableError when QEMU cannot load the files; QMP's errors.
 */
export async function addServerTls(
  qmp: QmpClient,
  tls: MigrationTls & { readonly sourceNodeId?: number },
): Promise<ServerTls> {
  const n = ++objects;
  const ids: ServerTls = { creds: `migration-tls-${n}`, authz: `migration-authz-${n}` };
  await addCreds(qmp, tls, "server", ids.creds);
  const rule =
    tls.sourceNodeId === undefined
      ? { match: nodeSubjectPattern(tls.clusterId), policy: "allow", format: "glob" }
      : { match: nodeSubject(tls.clusterId, tls.sourceNodeId), policy: "allow", format: "exact" };
  await qmp.execute("object-add", {
    "qom-type": "authz-list",
    id: ids.authz,
    policy: "deny",
    rules: [rule],
  });
  return ids;
}

/**
 * Gives a source's QEMU the objects to reach the target node `targetNodeId` (see the module
 * comment).
 * @throws UnavailableError when QEMU cannot load the files.
 */
export async function addClientTls(
  qmp: QmpClient,
  tls: MigrationTls,
  targetNodeId: number,
): Promise<ClientTls> {
  const creds = `migration-tls-${++objects}`;
  await addCreds(qmp, tls, "client", creds);
  return { creds, hostname: nodeIdentityName(tls.clusterId, targetNodeId) };
}

/** Removes objects added here (once nothing uses them). Throws nothing. */
export async function removeTlsObjects(qmp: QmpClient, ids: readonly string[]): Promise<void> {
  for (const id of ids) await qmp.execute("object-del", { id }).catch(() => undefined);
}
