/**
 * /proc/self/status of the simulated process: the lines deno_vfio reads (VmLck for the pages VFIO
 * type1 has charged to locked_vm), formatted as fs/proc/task_mmu.c prints them.
 *
 * @module
 */

import type { SimProcess } from "./file.ts";

/** Bytes per kB in /proc. */
const KIB = 1024;
/** Field width of the memory figures in /proc/self/status. */
const STATUS_WIDTH = 8;
/** The pid the simulated process reports. */
export const SIM_PID = 4242;

function kb(name: string, kib: number): string {
  return `${name}:\t${String(kib).padStart(STATUS_WIDTH)} kB\n`;
}

/** The text of /proc/self/status. */
export function procStatus(process: SimProcess, pageSize: number): string {
  const lockedKib = (process.lockedPages * pageSize) / KIB;
  const mappedKib = process.memory.mappings.reduce((sum, m) => sum + m.length, 0) / KIB;
  return "Name:\tdeno\n" +
    "State:\tR (running)\n" +
    `Pid:\t${SIM_PID}\n` +
    kb("VmSize", mappedKib) +
    kb("VmLck", lockedKib) +
    kb("VmPin", 0) +
    kb("VmRSS", mappedKib);
}
