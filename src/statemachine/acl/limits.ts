/** Bounds of the ACL namespace: every list and string has one, so its state stays small. */

/** The most policies. */
export const MAX_ACL_POLICIES = 1024;
/** The most tokens. */
export const MAX_ACL_TOKENS = 16_384;
/** The most certificate bindings. */
export const MAX_ACL_CERT_BINDINGS = 1024;
/** The most rules in one policy. */
export const MAX_RULES_PER_POLICY = 256;
/** The most policies one token or binding holds. */
export const MAX_POLICIES_PER_HOLDER = 32;
/** Longest policy, token or binding name. */
export const MAX_ACL_NAME_BYTES = 128;
/** Longest description. */
export const MAX_ACL_DESCRIPTION_BYTES = 512;
/** Longest certificate common name. */
export const MAX_COMMON_NAME_BYTES = 256;
/** Longest encoded ACL command. */
export const MAX_ACL_COMMAND_BYTES = 64 * 1024;
