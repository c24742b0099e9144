/**
 * Issuing the cluster's certificates: a self-signed CA, node certificates and client
 * certificates, all ECDSA P-256 with SHA-256, keys made by `node:crypto` (WebCrypto) and the
 * X.509 structures built by `@peculiar/x509`. Nothing shells out to openssl.
 *
 * - The CA: `CN=blixard-ca.<cluster-id>`, CA:true (path length 0), keyCertSign + cRLSign.
 * - A node: `CN=node-<id>.<cluster-id>.blixard`, the same name as a DNS subject alternative name
 *   (what proves which node speaks; see `names.ts`), plus the `hosts` given (DNS names and IP
 *   addresses, so the same certificate serves the HTTPS API), serverAuth + clientAuth.
 * - A client: `CN=<name>`, `OU=<cluster-id>`, clientAuth only.
 *
 * The library is loaded on first use: it is heavy (~150 ms), and only `blixard tls`,
 * `blixard dev` and tests issue certificates; a node only loads them (`files.ts`).
 */
import { createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import { InvalidArgumentError } from "../common/errors.js";
import { TlsMaterialError } from "./errors.js";
import { isValidClusterIdForNames, nodeIdentityName } from "./names.js";

/** A certificate and its private key, both PEM. */
export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Default lifetime of a CA: 10 years. */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;
/** Default lifetime of a node or client certificate: about 2 years. */
export const DEFAULT_CERT_VALIDITY_DAYS = 825;
/** How far back `notBefore` is set, so a peer whose clock is a little behind accepts it. */
const CLOCK_SKEW_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Client names: they sit in a subject name and map to ACL policies, so keep them plain. */
const CLIENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** A DNS name (labels of letters, digits and dashes; `*.` wildcards are not issued). */
const DNS_NAME_PATTERN =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The common name of the CA of `clusterId`. */
export function caCommonName(clusterId: string): string {
  return `blixard-ca.${clusterId}`;
}

type X509 = typeof import("@peculiar/x509");
let library: Promise<X509> | undefined;

/** Loads `@peculiar/x509` once (its dependency injection needs the reflect-metadata polyfill). */
function x509(): Promise<X509> {
  library ??= (async () => {
    await import("reflect-metadata");
    const lib = await import("@peculiar/x509");
    lib.cryptoProvider.set(webcrypto);
    return lib;
  })();
  return library;
}

/** Options of {@link createCertificateAuthority}. */
export interface CaOptions {
  /** The cluster the CA signs for (lower-case letters, digits and dashes). */
  readonly clusterId: string;
  /** Default {@link DEFAULT_CA_VALIDITY_DAYS}. */
  readonly validityDays?: number;
  /** The issue time. Default: now. */
  readonly now?: Date;
}

/**
 * Creates a self-signed CA for `clusterId`.
 * @throws InvalidArgumentError on a cluster id that cannot be carried in names, or a bad validity.
 */
export async function createCertificateAuthority(options: CaOptions): Promise<IssuedCertificate> {
  checkClusterId(options.clusterId);
  const lib = await x509();
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(options, DEFAULT_CA_VALIDITY_DAYS);
  const cert = await lib.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${caCommonName(options.clusterId)}, O=blixard`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new lib.BasicConstraintsExtension(true, 0, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
      await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey) };
}

/** Options of {@link issueNodeCertificate}. */
export interface NodeCertificateOptions {
  readonly clusterId: string;
  /** The node's raft id. */
  readonly nodeId: number;
  /** More names to serve under: DNS names or IP addresses (e.g. `127.0.0.1`, `localhost`). */
  readonly hosts?: readonly string[];
  /** Default {@link DEFAULT_CERT_VALIDITY_DAYS}. */
  readonly validityDays?: number;
  readonly now?: Date;
}

/**
 * Issues node `nodeId`'s certificate, signed by `ca`.
 * @throws InvalidArgumentError on a bad id, host or validity; TlsMaterialError if `ca` is unusable.
 */
export async function issueNodeCertificate(
  ca: IssuedCertificate,
  options: NodeCertificateOptions,
): Promise<IssuedCertificate> {
  checkClusterId(options.clusterId);
  if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) {
    throw new InvalidArgumentError(`node id ${options.nodeId} must be a positive integer`);
  }
  const lib = await x509();
  const identity = nodeIdentityName(options.clusterId, options.nodeId);
  const names: { type: "dns" | "ip"; value: string }[] = [{ type: "dns", value: identity }];
  for (const host of options.hosts ?? []) {
    const name = hostName(host);
    if (!names.some((n) => n.type === name.type && n.value === name.value)) names.push(name);
  }
  return issueLeaf(lib, ca, options, {
    subject: `CN=${identity}, O=blixard`,
    usages: [lib.ExtendedKeyUsage.serverAuth, lib.ExtendedKeyUsage.clientAuth],
    names,
  });
}

/** Options of {@link issueClientCertificate}. */
export interface ClientCertificateOptions {
  readonly clusterId: string;
  /** The client's name: its certificate's common name (what ACL policies map). */
  readonly name: string;
  readonly validityDays?: number;
  readonly now?: Date;
}

/**
 * Issues a client certificate for `name`, signed by `ca`.
 * @throws InvalidArgumentError on a bad name or validity; TlsMaterialError if `ca` is unusable.
 */
export async function issueClientCertificate(
  ca: IssuedCertificate,
  options: ClientCertificateOptions,
): Promise<IssuedCertificate> {
  checkClusterId(options.clusterId);
  if (!CLIENT_NAME_PATTERN.test(options.name)) {
    throw new InvalidArgumentError(
      `client name "${options.name}" must be 1 to 64 letters, digits, '.', '_', '@' or '-'`,
    );
  }
  const lib = await x509();
  return issueLeaf(lib, ca, options, {
    subject: `CN=${options.name}, OU=${options.clusterId}, O=blixard`,
    usages: [lib.ExtendedKeyUsage.clientAuth],
    names: [],
  });
}

async function issueLeaf(
  lib: X509,
  ca: IssuedCertificate,
  options: { readonly validityDays?: number; readonly now?: Date },
  leaf: {
    readonly subject: string;
    readonly usages: string[];
    readonly names: { type: "dns" | "ip"; value: string }[];
  },
): Promise<IssuedCertificate> {
  let caCert: InstanceType<X509["X509Certificate"]>;
  try {
    caCert = new lib.X509Certificate(ca.certPem);
  } catch (error) {
    throw new TlsMaterialError(
      "malformed",
      undefined,
      "the CA certificate is not a PEM certificate",
      {
        cause: error,
      },
    );
  }
  const signingKey = await importCaKey(ca.keyPem);
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(options, DEFAULT_CERT_VALIDITY_DAYS);
  const cert = await lib.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: leaf.subject,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new lib.BasicConstraintsExtension(false, undefined, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
      new lib.ExtendedKeyUsageExtension(leaf.usages, false),
      ...(leaf.names.length === 0 ? [] : [new lib.SubjectAlternativeNameExtension(leaf.names)]),
      await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await lib.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey) };
}

function checkClusterId(clusterId: string): void {
  if (!isValidClusterIdForNames(clusterId)) {
    throw new InvalidArgumentError(
      `cluster id "${clusterId}" cannot be named in certificates: use 1 to 63 lower-case ` +
        "letters, digits and dashes, starting and ending with a letter or digit",
    );
  }
}

function hostName(host: string): { type: "dns" | "ip"; value: string } {
  if (isIP(host) !== 0) return { type: "ip", value: host };
  if (!DNS_NAME_PATTERN.test(host)) {
    throw new InvalidArgumentError(`--host "${host}" is neither an IP address nor a DNS name`);
  }
  return { type: "dns", value: host.toLowerCase() };
}

function validity(
  options: { readonly validityDays?: number; readonly now?: Date },
  defaultDays: number,
): { notBefore: Date; notAfter: Date } {
  const days = options.validityDays ?? defaultDays;
  if (!Number.isSafeInteger(days) || days <= 0 || days > 36_500) {
    throw new InvalidArgumentError(`validity of ${days} days must be 1 to 36500 days`);
  }
  const nowMs = (options.now ?? new Date()).getTime();
  return { notBefore: new Date(nowMs - CLOCK_SKEW_MS), notAfter: new Date(nowMs + days * DAY_MS) };
}

/** A random positive 128-bit serial number, hex (RFC 5280 asks for at most 20 octets). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  bytes[0] |= 0x40; // no leading zero octet to strip, so the length is always 16
  return bytes.toString("hex");
}

function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key));
  const body = der
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

/** The CA's private key as a WebCrypto signing key. */
async function importCaKey(pem: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new Error(`a ${key.asymmetricKeyType ?? "unknown"} key, not ECDSA P-256`);
    }
    der = key.export({ format: "der", type: "pkcs8" });
  } catch (error) {
    throw new TlsMaterialError(
      "malformed",
      undefined,
      `the CA key is not an ECDSA P-256 private key in PEM: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return webcrypto.subtle.importKey("pkcs8", der, ALGORITHM, false, ["sign"]);
}
