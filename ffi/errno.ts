/**
 * Linux errno numbers (asm-generic/errno-base.h and asm-generic/errno.h; the values are the same on
 * x86-64, arm64 and ppc64 for every errno this project uses).
 *
 * Every {@link Kernel} call reports failure the way a raw system call does: it returns the
 * negative errno (`-ERRNO.EINVAL`). {@link errnoName} turns such a number back into its name.
 *
 * @module
 */

/** errno values by name. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  ETIME: 62,
  EOVERFLOW: 75,
  EBADFD: 77,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ETIMEDOUT: 110,
  ECANCELED: 125,
} as const;

/** The name of an errno constant, e.g. `"EINVAL"`. */
export type ErrnoName = keyof typeof ERRNO;

const NAMES: Map<number, ErrnoName> = new Map(
  (Object.entries(ERRNO) as [ErrnoName, number][]).map(([name, value]) => [value, name]),
);

/**
 * The name of an errno, given either as the positive number or as a negative system-call result.
 *
 * @example
 * ```ts
 * errnoName(-22); // "EINVAL"
 * ```
 */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return NAMES.get(n) ?? `errno ${n}`;
}

/** True when a {@link Kernel} result is a failure (a negative errno). */
export function isErrno(result: number): boolean {
  return result < 0;
}
