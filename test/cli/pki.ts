/**
 * TLS material for tests that start real nodes: one CA per test file (made with the project's
 * own `src/security` issuing), node certificates written where `node start` looks by default
 * (`<data-dir>/tls/`), and an admin client certificate for the CLI and the TypeScript client.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { issueNodeInto, initCaDir, issueClientInto } from "../../src/cli/tls/ca-dir.js";

/** A test CA and the credentials of its admin client. */
export interface TestPki {
  readonly dir: string;
  readonly clusterId: string;
  readonly caPath: string;
  /** `BLIXARD_CACERT`, `BLIXARD_CERT`, `BLIXARD_KEY` for CLI runs. */
  readonly clientEnv: Readonly<Record<string, string>>;
  /** `ca`, `cert`, `key` (PEM) for a `BlixardClient`. */
  readonly clientOptions: { readonly ca: string; readonly cert: string; readonly key: string };
  /** Writes node `id`'s certificate, key and the CA into `<dataDir>/tls/`. */
  provision(dataDir: string, id: number): Promise<void>;
}

/** Creates a CA for `clusterId` in `<root>/pki` and an admin client certificate. */
export async function createTestPki(root: string, clusterId: string): Promise<TestPki> {
  const dir = join(root, "pki");
  mkdirSync(root, { recursive: true });
  await initCaDir(dir, { clusterId });
  const client = await issueClientInto(dir, "root");
  return {
    dir,
    clusterId,
    caPath: client.ca,
    clientEnv: { BLIXARD_CACERT: client.ca, BLIXARD_CERT: client.cert, BLIXARD_KEY: client.key },
    clientOptions: {
      ca: readFileSync(client.ca, "utf8"),
      cert: readFileSync(client.cert, "utf8"),
      key: readFileSync(client.key, "utf8"),
    },
    async provision(dataDir: string, id: number): Promise<void> {
      await issueNodeInto(
        dir,
        { nodeId: id, hosts: ["127.0.0.1", "localhost"] },
        { out: join(dataDir, "tls"), force: true },
      );
    },
  };
}
