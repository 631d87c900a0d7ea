/**
 * ICMP echo (RFC 792): the message layout the stack answers.
 *
 * @module
 */

/** Minimum ICMP message: type, code, checksum, rest-of-header. */
export const ICMP_HEADER_LENGTH = 8;
/** Offset of the type. */
export const ICMP_TYPE = 0;
/** Offset of the code. */
export const ICMP_CODE = 1;
/** Offset of the checksum. */
export const ICMP_CHECKSUM = 2;
/** Type: echo reply. */
export const ICMP_ECHO_REPLY = 0;
/** Type: echo request. */
export const ICMP_ECHO_REQUEST = 8;
