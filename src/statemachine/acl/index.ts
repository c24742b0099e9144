/** The ACL namespace: tokens, policies and certificate bindings in the replicated state. */
export * from "./types.js";
export * from "./limits.js";
export { ACL_SNAPSHOT_FORMAT_VERSION, AclState, type AclQueries } from "./acl-state.js";
export {
  ACL_COMMAND_FORMAT,
  decodeAclCommand,
  decodeAclResult,
  encodeAclCommand,
  encodeAclResult,
} from "./codec.js";
export { RULE_ACCESSES, readAclCommand, readAclRule } from "./reader.js";
export {
  formatRule,
  parseRule,
  permissionText,
  ruleGrants,
  rulesGrant,
  type Permission,
} from "./policy.js";
