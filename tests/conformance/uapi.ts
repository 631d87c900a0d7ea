/**
 * The uAPI declarations the conformance scenarios use, gathered in one place.
 *
 * @module
 */

export * from "../../ffi/uapi/mod.ts";
