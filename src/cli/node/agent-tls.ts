/**
 * Which TLS material `agent start` uses: the cluster's CA and the node certificate of its id,
 * from `--tls-ca`, `--tls-cert`, `--tls-key`, each defaulting to `<data-dir>/tls/ca.pem`,
 * `<data-dir>/tls/node-<id>.pem`, `<data-dir>/tls/node-<id>-key.pem` (what
 * `blixard tls issue --node <id> --out <data-dir>/tls` writes), as for a server. The servers
 * authenticate the agent as node `<id>` by it: it may act for that node only.
 */
import { join } from "node:path";
import { InvalidArgumentError } from "../../common/errors.js";
import { TLS_FILES, TlsMaterialError, loadNodeTlsMaterial } from "../../security/index.js";
import type { AgentTls } from "../../orchestrator/agent/remote/http-link.js";
import type { NodeTlsFileFlags } from "./worker-options.js";
import { NODE_TLS_DIR } from "./node-tls.js";

/**
 * The agent's TLS material, or undefined under `--insecure`.
 * @throws TlsMaterialError (a usage error) when it is missing, with the commands that make it,
 *   or names another node or cluster; InvalidArgumentError on TLS flags with `--insecure`.
 */
export function resolveAgentTls(
  flags: NodeTlsFileFlags,
  identity: { readonly clusterId: string; readonly nodeId: number; readonly dataDir: string },
): AgentTls | undefined {
  if (flags.insecure === true || (flags.insecure as unknown) === "true") {
    if ([flags.tlsCa, flags.tlsCert, flags.tlsKey].some((v) => v !== undefined)) {
      throw new InvalidArgumentError("--insecure runs without TLS: drop the --tls-* flags");
    }
    return undefined;
  }
  const dir = join(identity.dataDir, NODE_TLS_DIR);
  const paths = {
    ca: flags.tlsCa ?? join(dir, TLS_FILES.caCert),
    cert: flags.tlsCert ?? join(dir, TLS_FILES.nodeCert(identity.nodeId)),
    key: flags.tlsKey ?? join(dir, TLS_FILES.nodeKey(identity.nodeId)),
  };
  try {
    const material = loadNodeTlsMaterial(paths, identity);
    return { ca: material.ca, cert: material.cert, key: material.key };
  } catch (error) {
    if (error instanceof TlsMaterialError && error.problem === "missing") {
      throw new TlsMaterialError(
        "missing",
        error.path,
        `${error.message}. Agent ${identity.nodeId} authenticates to the servers with a node ` +
          "certificate of its id. On the machine that keeps the cluster's CA, run:\n" +
          `  blixard tls issue --dir ./pki --node ${identity.nodeId} --out ${dir}\n` +
          "then start the agent again (or give --tls-ca, --tls-cert and --tls-key)",
        { cause: error },
      );
    }
    throw error;
  }
}
