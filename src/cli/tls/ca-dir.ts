/**
 * A CA directory: what `blixard tls init` creates (`ca.pem`, `ca-key.pem`) and `blixard tls
 * issue` signs from, writing node and client certificates under the predictable names of
 * `TLS_FILES` (`node-3.pem`, `node-3-key.pem`, `client-admin.pem`, ...). When certificates go
 * to another directory (`--out`), `ca.pem` is copied there too, so that directory is everything
 * a node or client needs (never the CA key).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConflictError } from "../../common/errors.js";
import {
  TLS_FILES,
  TlsMaterialError,
  caClusterId,
  createCertificateAuthority,
  issueClientCertificate,
  issueNodeCertificate,
  loadTlsMaterial,
  writeIssued,
  writePrivateFile,
  type IssuedCertificate,
} from "../../security/index.js";

/** Files written by one command. */
export interface WrittenFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Options of {@link initCaDir}. */
export interface InitCaOptions {
  readonly clusterId: string;
  readonly validityDays?: number;
  /** Replace an existing CA (every certificate it signed stops being trusted). */
  readonly force?: boolean;
}

/**
 * Creates a CA in `dir`.
 * @throws ConflictError if `dir` already holds a CA key and `force` is not set.
 */
export async function initCaDir(dir: string, options: InitCaOptions): Promise<WrittenFiles> {
  const cert = join(dir, TLS_FILES.caCert);
  const key = join(dir, TLS_FILES.caKey);
  if (options.force !== true && (existsSync(key) || existsSync(cert))) {
    throw new ConflictError(
      `${dir} already holds a CA (${TLS_FILES.caCert}); keep using it, or pass --force to ` +
        "replace it (certificates it signed will no longer be trusted)",
    );
  }
  const ca = await createCertificateAuthority({
    clusterId: options.clusterId,
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  });
  writeIssued(dir, { cert: TLS_FILES.caCert, key: TLS_FILES.caKey }, ca);
  return { ca: cert, cert, key };
}

/** A CA read from its directory. */
export interface OpenedCa {
  readonly ca: IssuedCertificate;
  readonly clusterId: string;
}

/**
 * Reads and checks the CA in `dir` (its certificate and key match; it is a Blixard CA).
 * @throws TlsMaterialError if it is missing or unusable, saying to run `blixard tls init`.
 */
export function openCaDir(dir: string): OpenedCa {
  const cert = join(dir, TLS_FILES.caCert);
  const key = join(dir, TLS_FILES.caKey);
  let material;
  try {
    material = loadTlsMaterial({ ca: cert, cert, key });
  } catch (error) {
    if (error instanceof TlsMaterialError && error.problem === "missing") {
      throw new TlsMaterialError(
        "missing",
        error.path,
        `${error.message}: create a CA with \`blixard tls init --dir ${dir}\`, or give the ` +
          "--dir that holds ca.pem and ca-key.pem",
        { cause: error },
      );
    }
    throw error;
  }
  const clusterId = caClusterId(material.caCertificate);
  if (clusterId === undefined) {
    throw new TlsMaterialError(
      "wrong-identity",
      cert,
      `${cert} is not a Blixard CA (its name is not blixard-ca.<cluster-id>)`,
    );
  }
  return { ca: { certPem: material.ca, keyPem: material.key }, clusterId };
}

/** Where and how to write an issued certificate. */
export interface IssueOptions {
  /** Where to write (default: the CA directory). */
  readonly out?: string;
  readonly validityDays?: number;
  /** Replace existing files of the same name. */
  readonly force?: boolean;
}

/**
 * Issues node `nodeId`'s certificate from the CA in `caDir`.
 * @throws TlsMaterialError if the CA is unusable; ConflictError if the files exist (no force);
 *   InvalidArgumentError on a bad id or host.
 */
export async function issueNodeInto(
  caDir: string,
  node: { readonly nodeId: number; readonly hosts?: readonly string[] },
  options: IssueOptions = {},
): Promise<WrittenFiles> {
  const { ca, clusterId } = openCaDir(caDir);
  const names = { cert: TLS_FILES.nodeCert(node.nodeId), key: TLS_FILES.nodeKey(node.nodeId) };
  const out = options.out ?? caDir;
  refuseOverwrite(out, names, options.force);
  const issued = await issueNodeCertificate(ca, {
    clusterId,
    nodeId: node.nodeId,
    ...(node.hosts === undefined ? {} : { hosts: node.hosts }),
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  });
  return { ca: copyCa(caDir, out, ca), ...write(out, names, issued) };
}

/**
 * Issues a client certificate for `name` from the CA in `caDir`.
 * @throws as {@link issueNodeInto}.
 */
export async function issueClientInto(
  caDir: string,
  name: string,
  options: IssueOptions = {},
): Promise<WrittenFiles> {
  const { ca, clusterId } = openCaDir(caDir);
  const names = { cert: TLS_FILES.clientCert(name), key: TLS_FILES.clientKey(name) };
  const out = options.out ?? caDir;
  refuseOverwrite(out, names, options.force);
  const issued = await issueClientCertificate(ca, {
    clusterId,
    name,
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
  });
  return { ca: copyCa(caDir, out, ca), ...write(out, names, issued) };
}

function refuseOverwrite(
  out: string,
  names: { readonly cert: string; readonly key: string },
  force: boolean | undefined,
): void {
  if (force === true) return;
  for (const name of [names.cert, names.key]) {
    if (existsSync(join(out, name))) {
      throw new ConflictError(`${join(out, name)} already exists; pass --force to replace it`);
    }
  }
}

function write(
  out: string,
  names: { readonly cert: string; readonly key: string },
  issued: IssuedCertificate,
): { cert: string; key: string } {
  const { certPath, keyPath } = writeIssued(out, names, issued);
  return { cert: certPath, key: keyPath };
}

/** Copies the CA certificate (never its key) next to certificates written elsewhere. */
function copyCa(caDir: string, out: string, ca: IssuedCertificate): string {
  const target = join(out, TLS_FILES.caCert);
  if (resolve(out) !== resolve(caDir)) writePrivateFile(target, ca.certPem);
  return target;
}
