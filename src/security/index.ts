/**
 * The security layer: certificate identities (names), issuing (CA, node and client
 * certificates) and loading TLS material. Imports only `src/common`.
 */
export { TlsMaterialError, type TlsMaterialProblem } from "./errors.js";
export {
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
  TLS_FILES,
  caClusterId,
  loadNodeTlsMaterial,
  loadTlsMaterial,
  parseCertificate,
  parsePrivateKey,
  readPemFile,
  writeIssued,
  writePrivateFile,
  type TlsMaterial,
  type TlsPaths,
} from "./files.js";
export { commonName, dnsNames, peerNodeId } from "./identity.js";
export {
  DEFAULT_CA_VALIDITY_DAYS,
  DEFAULT_CERT_VALIDITY_DAYS,
  caCommonName,
  createCertificateAuthority,
  issueClientCertificate,
  issueNodeCertificate,
  type CaOptions,
  type ClientCertificateOptions,
  type IssuedCertificate,
  type NodeCertificateOptions,
} from "./issue.js";
export {
  IDENTITY_DNS_SUFFIX,
  isValidClusterIdForNames,
  nodeIdentityName,
  parseNodeIdentityName,
} from "./names.js";
