/**
 * The TLS material of `blixard dev`, made once in `<data-dir>/tls/`: a CA for the dev cluster,
 * a certificate per node (for 127.0.0.1 and localhost, so it also serves the HTTPS API) and an
 * `root` client certificate (all rights, like etcd's root user). A later run reuses what is there and issues only what is missing.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TLS_FILES } from "../../security/files.js";
import { initCaDir, issueClientInto, issueNodeInto } from "../tls/ca-dir.js";

/** The dev cluster's id (its certificates name it). */
export const DEV_TLS_CLUSTER_ID = "blixard-dev";
/** The client certificate made for the developer. */
export const DEV_CLIENT_NAME = "root";

/** Credentials of the dev command's own clients. */
export interface DevClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** What the dev cluster's TLS is. */
export interface DevTls {
  readonly dir: string;
  readonly caPath: string;
  readonly clientCertPath: string;
  readonly clientKeyPath: string;
  /** The `node start` flags of node `id`. */
  nodeArgs(id: number): string[];
  readonly clientTls: DevClientTls;
}

/** Creates (once) and returns the dev cluster's TLS material under `<dataDir>/tls`. */
export async function provisionDevTls(options: {
  readonly dataDir: string;
  readonly nodes: number;
}): Promise<DevTls> {
  const dir = join(options.dataDir, "tls");
  if (!existsSync(join(dir, TLS_FILES.caKey))) {
    await initCaDir(dir, { clusterId: DEV_TLS_CLUSTER_ID });
  }
  for (let id = 1; id <= options.nodes; id++) {
    if (!existsSync(join(dir, TLS_FILES.nodeCert(id)))) {
      await issueNodeInto(
        dir,
        { nodeId: id, hosts: ["127.0.0.1", "localhost", "::1"] },
        { force: true },
      );
    }
  }
  const clientCertPath = join(dir, TLS_FILES.clientCert(DEV_CLIENT_NAME));
  const clientKeyPath = join(dir, TLS_FILES.clientKey(DEV_CLIENT_NAME));
  if (!existsSync(clientCertPath)) await issueClientInto(dir, DEV_CLIENT_NAME, { force: true });
  const caPath = join(dir, TLS_FILES.caCert);
  return {
    dir,
    caPath,
    clientCertPath,
    clientKeyPath,
    nodeArgs: (id) => [
      "--tls-ca",
      caPath,
      "--tls-cert",
      join(dir, TLS_FILES.nodeCert(id)),
      "--tls-key",
      join(dir, TLS_FILES.nodeKey(id)),
    ],
    clientTls: {
      ca: readFileSync(caPath, "utf8"),
      cert: readFileSync(clientCertPath, "utf8"),
      key: readFileSync(clientKeyPath, "utf8"),
    },
  };
}
