/**
 * The simulated iommufd: re-exports.
 *
 * @module
 */

export { IommufdContext, type IommufdContextOptions } from "./context.ts";
