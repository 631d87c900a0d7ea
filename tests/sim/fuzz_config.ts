/**
 * What the simulator fuzzer runs: the seed, the rounds and the IOMMU models, from environment
 * variables (defaults keep `deno task test` as short as before: 120 rounds of 3,000 calls, now
 * split over the four models), and for each model the machines it fuzzes and how a round sets
 * up its fds.
 *
 * - `DENO_VFIO_FUZZ_SEED`: the seed (decimal or 0x-hex; default 0x20261122);
 * - `DENO_VFIO_FUZZ_ROUNDS`: rounds per model (default 30);
 * - `DENO_VFIO_FUZZ_IOMMU`: a comma list of models, or `all` (default).
 *
 * Each model has a 6.12 machine as Linux 6.12 on QEMU 10 has it, and one with every later
 * feature the simulator knows (a 6.15 kernel: vIOMMU, vDEVICE, vEVENTQ, PASID attach; nested
 * translation and PASIDs in the IOMMU; CONFIG_IOMMUFD_TEST), so the deep paths are reachable.
 * Rounds alternate between them.
 *
 * @module
 */

import type { MachineOptions } from "../../sim/mod.ts";

/** How a round opens its fds: who owns the group. */
export type SetupMode = "type1" | "compat" | "cdev" | "spapr-v2" | "spapr-v1";

/** One fuzzed model: its machines and setup modes. */
export interface FuzzModel {
  /** The IOMMU model name. */
  readonly iommu: MachineOptions["iommu"];
  /** Machines to fuzz, by name (rounds alternate between them). */
  readonly machines: readonly { readonly name: string; readonly options: MachineOptions }[];
  /** How rounds may open their fds. */
  readonly modes: readonly SetupMode[];
}

/** The device under test and a PASID-capable one (each in its own group). */
export const FUZZ_DEVICES = [
  { model: "edu", bdf: "0000:00:02.0" },
  { model: "pasid-dma", bdf: "0000:00:03.0" },
] as const;

// cdev rounds bind the device, whose id the deep paths (HWPT, vIOMMU, PASID) need: half the rounds.
const IOMMUFD_MODES: readonly SetupMode[] = ["type1", "compat", "cdev", "cdev"];
const LATER = "6.15";

/** Every model the fuzzer knows. */
export const FUZZ_MODELS: readonly FuzzModel[] = [
  {
    iommu: "vtd",
    machines: [
      { name: "6.12", options: { iommu: "vtd", iommufd: true, cdev: true } },
      {
        name: `${LATER}, scalable mode with nesting, IOMMUFD_TEST`,
        options: {
          iommu: "vtd",
          iommufd: true,
          cdev: true,
          kernelVersion: LATER,
          vtdScalableMode: { nesting: true },
          iommufdTest: true,
        },
      },
    ],
    modes: IOMMUFD_MODES,
  },
  {
    iommu: "smmuv3",
    machines: [
      { name: "6.12", options: { iommu: "smmuv3", iommufd: true, cdev: true } },
      {
        name: `${LATER}, nesting, 8 SSID bits, IOMMUFD_TEST`,
        options: {
          iommu: "smmuv3",
          iommufd: true,
          cdev: true,
          kernelVersion: LATER,
          smmuNesting: { ssidBits: 8 },
          iommufdTest: true,
        },
      },
    ],
    modes: IOMMUFD_MODES,
  },
  {
    iommu: "virtio-iommu",
    machines: [
      {
        name: "6.12",
        options: {
          iommu: "virtio-iommu",
          iommufd: true,
          cdev: true,
          allowUnsafeInterrupts: { type1: true, iommufd: true },
        },
      },
      {
        name: `${LATER}, IOMMUFD_TEST`,
        options: {
          iommu: "virtio-iommu",
          iommufd: true,
          cdev: true,
          allowUnsafeInterrupts: { type1: true, iommufd: true },
          kernelVersion: LATER,
          iommufdTest: true,
        },
      },
    ],
    modes: IOMMUFD_MODES,
  },
  {
    // POWER9 PowerNV: the sPAPR TCE container only (no iommufd, no cdev on that platform).
    iommu: "spapr",
    machines: [{ name: "6.12", options: { iommu: "spapr" } }],
    modes: ["spapr-v2", "spapr-v1"],
  },
];

/** The run's settings. */
export interface FuzzSettings {
  /** The seed. */
  readonly seed: number;
  /** Rounds per model. */
  readonly rounds: number;
  /** Models to fuzz. */
  readonly models: readonly FuzzModel[];
}

const DEFAULT_SEED = 0x2026_1122;
const DEFAULT_ROUNDS = 30;

function whole(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${name}=${text}: want a whole number (decimal or 0x-hex)`);
  }
  return n;
}

/** The settings from the environment (`get` reads a variable; undefined when unset). */
export function fuzzSettings(get: (name: string) => string | undefined): FuzzSettings {
  const seedText = get("DENO_VFIO_FUZZ_SEED");
  const roundsText = get("DENO_VFIO_FUZZ_ROUNDS");
  const iommuText = get("DENO_VFIO_FUZZ_IOMMU") ?? "all";
  const seed = seedText === undefined ? DEFAULT_SEED : whole("DENO_VFIO_FUZZ_SEED", seedText);
  const rounds = roundsText === undefined
    ? DEFAULT_ROUNDS
    : whole("DENO_VFIO_FUZZ_ROUNDS", roundsText);
  if (rounds < 1) throw new Error("DENO_VFIO_FUZZ_ROUNDS: want at least 1 round");
  const names = iommuText === "all" ? FUZZ_MODELS.map((m) => m.iommu) : iommuText.split(",");
  const models = names.map((name) => {
    const m = FUZZ_MODELS.find((x) => x.iommu === name.trim());
    if (m === undefined) {
      throw new Error(
        `DENO_VFIO_FUZZ_IOMMU: no model "${name}" (want all, or a comma list of ${
          FUZZ_MODELS.map((x) => x.iommu).join(", ")
        })`,
      );
    }
    return m;
  });
  return { seed: seed >>> 0, rounds, models };
}
