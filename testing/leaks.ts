/**
 * Leak checks for driver tests on the simulator: a {@link LeakCheck} takes the machine's
 * resources when it is made (fds, files, mappings, locked pages, machine memory, IOMMU domains;
 * see `machineResources`) plus any figure the test asks it to keep (a packet pool's free
 * buffers), and later lists everything that is not back where it was.
 *
 * @example
 * ```ts
 * const leaks = new LeakCheck(machine);
 * using dev = openPciDevice(BDF, { kernel: machine.kernel });
 * const nic = await VirtioNet.open(dev);
 * leaks.keepPool(nic.pool);          // every buffer free again at the end
 * // … traffic …
 * nic.close();
 * dev.close();
 * leaks.assertClean();               // throws, naming each figure that differs
 * ```
 *
 * @module
 */

import type { SimMachine } from "../sim/machine.ts";
import { type MachineResources, machineResources, resourceChanges } from "../sim/resources.ts";

/** Anything with a count of free buffers (a `PacketPool`). */
export interface PoolLike {
  /** Buffers currently free. */
  readonly available: number;
  /** Buffers in all. */
  readonly capacity: number;
}

interface Kept {
  readonly name: string;
  readonly read: () => number;
  readonly value: number;
}

/** A baseline of a machine's resources, checked later (see the module doc). */
export class LeakCheck {
  /** The machine watched. */
  readonly machine: SimMachine;
  /** The resources when the check was made. */
  readonly baseline: MachineResources;
  readonly #kept: Kept[] = [];
  readonly #bugs: number;

  /** Take the baseline of `machine` now. */
  constructor(machine: SimMachine) {
    this.machine = machine;
    this.baseline = machineResources(machine);
    this.#bugs = machine.kernel.bugs.length;
  }

  /** Expect `read()` to be back at its current value when checked. */
  keep(name: string, read: () => number): void {
    this.#kept.push({ name, read, value: read() });
  }

  /**
   * Expect every buffer of the pool to be free when checked: the driver returned what its rings
   * held when it closed, and the application and stack returned what they took.
   */
  keepPool(pool: PoolLike, name = "packet pool"): void {
    this.#kept.push({
      name: `${name} free buffers`,
      read: () => pool.available,
      value: pool.capacity,
    });
  }

  /**
   * Everything not back at its baseline, one line each (empty: nothing leaked); machine figures
   * named in `ignore` are not compared.
   */
  changes(ignore: readonly (keyof MachineResources)[] = []): string[] {
    const out = resourceChanges(this.baseline, machineResources(this.machine), ignore);
    for (const k of this.#kept) {
      const now = k.read();
      if (now !== k.value) out.push(`${k.name}: ${k.value} before, ${now} after`);
    }
    const bugs = this.machine.kernel.bugs.slice(this.#bugs);
    for (const b of bugs) out.push(`simulator bug: ${b.message}`);
    return out;
  }

  /** Throw an Error listing every change when something is not back at its baseline. */
  assertClean(when = "at the end of the test"): void {
    const changes = this.changes();
    if (changes.length > 0) {
      throw new Error(`resources not back to their baseline ${when}:\n  ${changes.join("\n  ")}`);
    }
  }
}
