/** The client-facing API: the HTTP server, the node service port and its raft implementation. */
export * from "./service.js";
export * from "./member-directory.js";
export { RaftKvService, type RaftKvServiceOptions } from "./raft-service.js";
export * from "./orchestrator-service.js";
export {
  RaftOrchestratorService,
  MAX_TASK_WAITERS,
  type OrchestratorNodePort,
  type RaftOrchestratorServiceOptions,
} from "./raft-orchestrator-service.js";
export { ApiMetrics } from "./metrics.js";
export { ApiServer, type ApiServerOptions, type ListenOptions, type LogLevel } from "./server.js";
export * from "./server-defaults.js";
export { buildOpenApiDocument, type OpenApiInfo } from "./openapi.js";
export type { RouteSpec, RequestContext } from "./route.js";
export { verifiedClientCertificate } from "./client-certificate.js";
export * from "./acl-service.js";
export * from "./audit/audit-log.js";
export * from "./auth/authenticator.js";
export * from "./auth/identity.js";
export { verifiedPeerCertificate, type PeerCertificate } from "./auth/peer-certificate.js";
