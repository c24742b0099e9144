/**
 * Which TLS material `node start` uses. Secure by default: without `--insecure` a node needs
 * the cluster's CA, its own certificate and key, from `--tls-ca`, `--tls-cert`, `--tls-key`
 * (or `BLIXARD_TLS_*`, or the config file), each defaulting to
 * `<data-dir>/tls/ca.pem`, `<data-dir>/tls/node-<id>.pem`, `<data-dir>/tls/node-<id>-key.pem`
 * (the names `blixard tls issue --node <id> --out <data-dir>/tls` writes). The API serves the
 * node's certificate unless `--api-tls-cert`/`--api-tls-key` give another one signed by the
 * same CA.
 */
import { join } from "node:path";
import { InvalidArgumentError } from "../../common/errors.js";
import {
  TLS_FILES,
  TlsMaterialError,
  loadNodeTlsMaterial,
  loadTlsMaterial,
} from "../../security/index.js";
import type { NodeTls } from "./compose.js";
import type { NodeConfig } from "./node-config.js";

/** The TLS flags of `node start`. */
export interface NodeTlsFlags {
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly apiTlsCert?: string;
  readonly apiTlsKey?: string;
  readonly insecure?: boolean;
}

/** The directory inside the data directory where a node looks for its TLS files. */
export const NODE_TLS_DIR = "tls";

/**
 * The node's TLS material, or undefined under `--insecure`.
 * @throws TlsMaterialError (a usage error) when it is missing, with the commands that make it,
 *   or unusable; InvalidArgumentError on TLS flags given with `--insecure`.
 */
export function resolveNodeTls(
  flags: NodeTlsFlags,
  config: NodeConfig,
  dataDir: string,
): NodeTls | undefined {
  const given = [flags.tlsCa, flags.tlsCert, flags.tlsKey, flags.apiTlsCert, flags.apiTlsKey];
  // From the config file the flag may arrive as the string "true".
  if (flags.insecure === true || (flags.insecure as unknown) === "true") {
    if (given.some((v) => v !== undefined)) {
      throw new InvalidArgumentError("--insecure runs without TLS: drop the --tls-* flags");
    }
    return undefined;
  }
  const dir = join(dataDir, NODE_TLS_DIR);
  const paths = {
    ca: flags.tlsCa ?? join(dir, TLS_FILES.caCert),
    cert: flags.tlsCert ?? join(dir, TLS_FILES.nodeCert(config.id)),
    key: flags.tlsKey ?? join(dir, TLS_FILES.nodeKey(config.id)),
  };
  let node;
  try {
    node = loadNodeTlsMaterial(paths, { clusterId: config.clusterId, nodeId: config.id });
  } catch (error) {
    if (error instanceof TlsMaterialError && error.problem === "missing") {
      throw new TlsMaterialError("missing", error.path, missingHint(error.message, config, dir), {
        cause: error,
      });
    }
    throw error;
  }
  if ((flags.apiTlsCert === undefined) !== (flags.apiTlsKey === undefined)) {
    throw new InvalidArgumentError("give both --api-tls-cert and --api-tls-key, or neither");
  }
  const api =
    flags.apiTlsCert === undefined || flags.apiTlsKey === undefined
      ? node
      : loadTlsMaterial({ ca: paths.ca, cert: flags.apiTlsCert, key: flags.apiTlsKey });
  return { ca: node.ca, cert: node.cert, key: node.key, apiCert: api.cert, apiKey: api.key };
}

function missingHint(problem: string, config: NodeConfig, dir: string): string {
  const host = config.apiListen.host;
  const hostFlag = ["0.0.0.0", "::", ""].includes(host) ? "<address clients use>" : host;
  return (
    `${problem}. Node ${config.id} needs TLS: peers use mutual TLS and the API serves HTTPS by ` +
    "default. On the machine that keeps the cluster's CA, run:\n" +
    `  blixard tls init --dir ./pki --cluster-id ${config.clusterId}    (once per cluster)\n` +
    `  blixard tls issue --dir ./pki --node ${config.id} --host ${hostFlag} --out ${dir}\n` +
    "then start the node again (or give --tls-ca, --tls-cert and --tls-key). " +
    "--insecure runs without TLS: anyone who reaches the ports controls the cluster"
  );
}
