/**
 * TLS material on disk: the predictable file names `blixard tls` writes (`ca.pem`,
 * `ca-key.pem`, `node-3.pem`, `node-3-key.pem`, `client-NAME.pem`, `client-NAME-key.pem`),
 * writing them private (files 0600, directories 0700), and loading and checking them with typed
 * errors that name the file and say what to do. Loading uses `node:crypto` only.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { TlsMaterialError } from "./errors.js";
import { commonName, peerNodeId } from "./identity.js";
import { caCommonName, type IssuedCertificate } from "./issue.js";
import { nodeIdentityName } from "./names.js";

/** The file names in a TLS directory. */
export const TLS_FILES = {
  caCert: "ca.pem",
  caKey: "ca-key.pem",
  nodeCert: (nodeId: number): string => `node-${nodeId}.pem`,
  nodeKey: (nodeId: number): string => `node-${nodeId}-key.pem`,
  clientCert: (name: string): string => `client-${name}.pem`,
  clientKey: (name: string): string => `client-${name}-key.pem`,
} as const;

/** Private file and directory modes: only the owner reads keys (and certificates, for tidiness). */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Writes `text` to `path` with mode 0600 (creating its directory with mode 0700), atomically: a
 * temporary file, then a rename.
 * @throws the fs error if the disk refuses.
 */
export function writePrivateFile(path: string, text: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const temporary = `${path}.new`;
  writeFileSync(temporary, text, { mode: PRIVATE_FILE_MODE, flush: true });
  chmodSync(temporary, PRIVATE_FILE_MODE); // the umask could not widen it, but a stale file could
  renameSync(temporary, path);
}

/** Writes a certificate and its key as `<dir>/<certName>` and `<dir>/<keyName>`, both 0600. */
export function writeIssued(
  dir: string,
  names: { readonly cert: string; readonly key: string },
  issued: IssuedCertificate,
): { certPath: string; keyPath: string } {
  const certPath = join(dir, names.cert);
  const keyPath = join(dir, names.key);
  writePrivateFile(keyPath, issued.keyPem);
  writePrivateFile(certPath, issued.certPem);
  return { certPath, keyPath };
}

/**
 * Reads a PEM file.
 * @throws TlsMaterialError "missing" or "unreadable", naming `what` and the file.
 */
export function readPemFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new TlsMaterialError("missing", path, `${what} ${path} does not exist`, {
        cause: error,
      });
    }
    throw new TlsMaterialError("unreadable", path, `cannot read ${what} ${path}: ${code}`, {
      cause: error,
    });
  }
}

/**
 * Parses the first certificate of a PEM text.
 * @throws TlsMaterialError "malformed".
 */
export function parseCertificate(pem: string, path: string, what: string): X509Certificate {
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new TlsMaterialError("malformed", path, `${what} ${path} holds no PEM certificate`);
  }
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new TlsMaterialError(
      "malformed",
      path,
      `${what} ${path} is not a valid certificate: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * Parses a PEM private key.
 * @throws TlsMaterialError "malformed".
 */
export function parsePrivateKey(pem: string, path: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw new TlsMaterialError(
      "malformed",
      path,
      `${what} ${path} is not a PEM private key (an encrypted key is not supported): ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
}

/** A certificate with its key and the CA that signed it, PEM, checked. */
export interface TlsMaterial {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** The parsed `cert`. */
  readonly certificate: X509Certificate;
  /** The parsed `ca`. */
  readonly caCertificate: X509Certificate;
}

/** Where a certificate, its key and its CA are. */
export interface TlsPaths {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * Loads a certificate, its key and the CA, and checks that the CA is a CA, that the key belongs
 * to the certificate, that the CA signed it and that it is valid at `now`.
 * @throws TlsMaterialError saying which file is wrong and how.
 */
export function loadTlsMaterial(paths: TlsPaths, now: Date = new Date()): TlsMaterial {
  const ca = readPemFile(paths.ca, "the CA certificate");
  const cert = readPemFile(paths.cert, "the certificate");
  const key = readPemFile(paths.key, "the private key");
  const caCertificate = parseCertificate(ca, paths.ca, "the CA certificate");
  const certificate = parseCertificate(cert, paths.cert, "the certificate");
  const privateKey = parsePrivateKey(key, paths.key, "the private key");
  if (!caCertificate.ca) {
    throw new TlsMaterialError(
      "wrong-identity",
      paths.ca,
      `${paths.ca} is not a CA certificate (CA:false); give the cluster's ca.pem`,
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TlsMaterialError(
      "key-mismatch",
      paths.key,
      `the private key ${paths.key} does not belong to the certificate ${paths.cert}`,
    );
  }
  if (!certificate.checkIssued(caCertificate) || !certificate.verify(caCertificate.publicKey)) {
    throw new TlsMaterialError(
      "untrusted",
      paths.cert,
      `the certificate ${paths.cert} was not signed by the CA ${paths.ca}; ` +
        "issue it again with `blixard tls issue` from this CA",
    );
  }
  checkValidity(caCertificate, paths.ca, now);
  checkValidity(certificate, paths.cert, now);
  return { ca, cert, key, certificate, caCertificate };
}

/**
 * {@link loadTlsMaterial} for node `nodeId` of `clusterId`: the certificate must also name that
 * node (`node-<id>.<cluster>.blixard`) and no other.
 * @throws TlsMaterialError.
 */
export function loadNodeTlsMaterial(
  paths: TlsPaths,
  identity: { readonly clusterId: string; readonly nodeId: number },
  now: Date = new Date(),
): TlsMaterial {
  const material = loadTlsMaterial(paths, now);
  const named = peerNodeId(material.certificate, identity.clusterId);
  if (named !== identity.nodeId) {
    const wanted = nodeIdentityName(identity.clusterId, identity.nodeId);
    throw new TlsMaterialError(
      "wrong-identity",
      paths.cert,
      `the certificate ${paths.cert} does not name ${wanted} (it is ${
        commonName(material.certificate) ?? "unnamed"
      }); issue one with \`blixard tls issue --node ${identity.nodeId}\``,
    );
  }
  return material;
}

/**
 * The cluster id a Blixard CA certificate was made for (from its `blixard-ca.<cluster>` name), or
 * undefined if it is not one.
 */
export function caClusterId(ca: X509Certificate): string | undefined {
  const name = commonName(ca);
  const prefix = caCommonName("");
  return name?.startsWith(prefix) === true && name.length > prefix.length
    ? name.slice(prefix.length)
    : undefined;
}

function checkValidity(cert: X509Certificate, path: string, now: Date): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from || now > to) {
    throw new TlsMaterialError(
      "expired",
      path,
      `the certificate ${path} is valid from ${from.toISOString()} to ${to.toISOString()}, ` +
        `not now (${now.toISOString()}); issue a new one`,
    );
  }
}
