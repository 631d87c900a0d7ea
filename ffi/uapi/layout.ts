/**
 * C struct layouts declared as data, with little-endian encoders and decoders.
 *
 * Each uAPI struct is declared once with its C name, its size and the offset and type of every
 * field, exactly as `offsetof`/`sizeof` report them for Linux 6.12. The same declaration encodes
 * ioctl arguments in the client and decodes them in the simulator, and the gcc layout test
 * (tests/uapi/) compares every declared field with the real headers. Field names are the C names,
 * so the test can print `offsetof(struct <name>, <field>)` for each.
 *
 * @example
 * ```ts
 * const dmaMap = defineStruct("vfio_iommu_type1_dma_map", 32, {
 *   argsz: u32(0), flags: u32(4), vaddr: u64(8), iova: u64(16), size: u64(24),
 * });
 * const bytes = encode(dmaMap, { argsz: 32, flags: 3, vaddr: 0x7f00_0000_0000n, iova: 0n, size: 4096n });
 * decode(dmaMap, bytes).size; // 4096n
 * ```
 *
 * @module
 */

/** Scalar C types that occur in the VFIO and iommufd uAPI. */
export type ScalarType = "u8" | "u16" | "u32" | "s32" | "u64";

/** One field: its byte offset, its type, and an element count for fixed arrays. */
export interface FieldDecl {
  /** Byte offset inside the struct, as `offsetof` reports it. */
  readonly offset: number;
  /** A scalar type, or the layout of a nested struct. */
  readonly type: ScalarType | StructLayout;
  /** Number of elements for a fixed-size array field (`__u8 __reserved[3]`); absent for scalars. */
  readonly count?: number;
}

/** The fields of a struct by C name. */
export type FieldMap = Readonly<Record<string, FieldDecl>>;

/** A C struct: its C name (without `struct`), `sizeof`, and its fields. */
export interface StructLayout<F extends FieldMap = FieldMap> {
  /** The C struct tag, e.g. `"vfio_iommu_type1_dma_map"`. */
  readonly name: string;
  /** `sizeof(struct name)`. */
  readonly size: number;
  /** The fields by C name. */
  readonly fields: F;
}

/** The JavaScript type of a scalar field: bigint for u64, number otherwise. */
export type ScalarValue<T> = T extends "u64" ? bigint : number;
/** The JavaScript type of one element of a field (scalar or nested struct). */
export type ElementValue<T> = T extends StructLayout<infer G> ? StructValues<G> : ScalarValue<T>;
/** The JavaScript type of a field (an array for fixed-size array fields). */
export type FieldValue<D extends FieldDecl> = D extends { count: number }
  ? ElementValue<D["type"]>[]
  : ElementValue<D["type"]>;

/** The decoded values of a struct: u64 fields are bigint, other scalars number. */
export type StructValues<F extends FieldMap> = { -readonly [K in keyof F]: FieldValue<F[K]> };

/** The values of a struct layout. */
export type ValuesOf<L> = L extends StructLayout<infer F> ? StructValues<F> : never;

const SCALAR_SIZE: Record<ScalarType, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

/** A scalar field of C type `T`. */
export interface ScalarField<T extends ScalarType> extends FieldDecl {
  /** The scalar type. */
  readonly type: T;
  /** Absent: a scalar is one element. */
  readonly count?: undefined;
}

/** A fixed-size array field (`__u8 __reserved[3]`) of `T` elements. */
export interface ArrayField<T extends ScalarType> extends FieldDecl {
  /** The element type. */
  readonly type: T;
  /** The number of elements. */
  readonly count: number;
}

/** A nested struct field. */
export interface NestedField<L extends StructLayout> extends FieldDecl {
  /** The nested struct's layout. */
  readonly type: L;
  /** Absent: one nested struct. */
  readonly count?: undefined;
}

/** A `__u8` field. */
export type U8 = ScalarField<"u8">;
/** A `__u16` field. */
export type U16 = ScalarField<"u16">;
/** A `__u32` field. */
export type U32 = ScalarField<"u32">;
/** A `__s32` field. */
export type S32 = ScalarField<"s32">;
/** A `__u64` / `__aligned_u64` field. */
export type U64 = ScalarField<"u64">;

/** A `__u8` field at `offset` (or an array of `count`). */
export function u8(offset: number): U8;
/** A `__u8` array of `count` elements at `offset`. */
export function u8(offset: number, count: number): ArrayField<"u8">;
export function u8(offset: number, count?: number): FieldDecl {
  return field(offset, "u8", count);
}
/** A `__u16` field. */
export function u16(offset: number): U16 {
  return { offset, type: "u16" };
}
/** A `__u32` field at `offset`. */
export function u32(offset: number): U32;
/** A `__u32` array of `count` elements at `offset`. */
export function u32(offset: number, count: number): ArrayField<"u32">;
export function u32(offset: number, count?: number): FieldDecl {
  return field(offset, "u32", count);
}
/** A `__s32` field (file descriptors). */
export function s32(offset: number): S32 {
  return { offset, type: "s32" };
}
/** A `__u64` / `__aligned_u64` field at `offset`; decoded as bigint. */
export function u64(offset: number): U64;
/** A `__u64` array of `count` elements at `offset`. */
export function u64(offset: number, count: number): ArrayField<"u64">;
export function u64(offset: number, count?: number): FieldDecl {
  return field(offset, "u64", count);
}
/** A nested struct field. */
export function nested<L extends StructLayout>(offset: number, layout: L): NestedField<L> {
  return { offset, type: layout };
}

function field(offset: number, type: ScalarType, count: number | undefined): FieldDecl {
  return count === undefined ? { offset, type } : { offset, type, count };
}

/** Declare a struct layout. Throws if a field lies outside `size` (a declaration error). */
export function defineStruct<F extends FieldMap>(
  name: string,
  size: number,
  fields: F,
): StructLayout<F> {
  for (const [field, decl] of Object.entries(fields)) {
    const end = decl.offset + fieldSize(decl);
    if (decl.offset < 0 || end > size) {
      throw new Error(
        `struct ${name}: field ${field} [${decl.offset}, ${end}) exceeds size ${size}`,
      );
    }
  }
  return Object.freeze({ name, size, fields: Object.freeze(fields) });
}

/** Size in bytes of one element of a field. */
export function elementSize(decl: FieldDecl): number {
  return typeof decl.type === "string" ? SCALAR_SIZE[decl.type] : decl.type.size;
}

/** Size in bytes of a whole field (all elements of an array). */
export function fieldSize(decl: FieldDecl): number {
  return elementSize(decl) * (decl.count ?? 1);
}

/** `offsetofend(struct, field)`: the byte just after a field, as the kernel's minsz rules use. */
export function offsetOfEnd<F extends FieldMap>(layout: StructLayout<F>, field: keyof F): number {
  const decl = layout.fields[field];
  return decl.offset + fieldSize(decl);
}

function readScalar(view: DataView, at: number, type: ScalarType): number | bigint {
  switch (type) {
    case "u8":
      return view.getUint8(at);
    case "u16":
      return view.getUint16(at, true);
    case "u32":
      return view.getUint32(at, true);
    case "s32":
      return view.getInt32(at, true);
    case "u64":
      return view.getBigUint64(at, true);
  }
}

function writeScalar(view: DataView, at: number, type: ScalarType, value: number | bigint): void {
  switch (type) {
    case "u8":
      view.setUint8(at, Number(value));
      return;
    case "u16":
      view.setUint16(at, Number(value), true);
      return;
    case "u32":
      view.setUint32(at, Number(BigInt.asUintN(32, BigInt(value))), true);
      return;
    case "s32":
      view.setInt32(at, Number(BigInt.asIntN(32, BigInt(value))), true);
      return;
    case "u64":
      view.setBigUint64(at, BigInt.asUintN(64, BigInt(value)), true);
      return;
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readElement(view: DataView, at: number, type: ScalarType | StructLayout): unknown {
  return typeof type === "string" ? readScalar(view, at, type) : readAt(type, view, at);
}

function readAt(layout: StructLayout, view: DataView, base: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, decl] of Object.entries(layout.fields)) {
    if (decl.count === undefined) {
      out[name] = readElement(view, base + decl.offset, decl.type);
    } else {
      const size = elementSize(decl);
      out[name] = Array.from(
        { length: decl.count },
        (_, i) => readElement(view, base + decl.offset + i * size, decl.type),
      );
    }
  }
  return out;
}

function writeElement(
  view: DataView,
  at: number,
  type: ScalarType | StructLayout,
  value: unknown,
): void {
  if (typeof type === "string") writeScalar(view, at, type, value as number | bigint);
  else writeAt(type, view, at, value as Record<string, unknown>);
}

function writeAt(
  layout: StructLayout,
  view: DataView,
  base: number,
  values: Record<string, unknown>,
): void {
  for (const [name, value] of Object.entries(values)) {
    const decl = layout.fields[name];
    if (decl === undefined) throw new Error(`struct ${layout.name} has no field ${name}`);
    if (value === undefined) continue;
    if (decl.count === undefined) {
      writeElement(view, base + decl.offset, decl.type, value);
    } else {
      const size = elementSize(decl);
      const items = value as unknown[];
      for (let i = 0; i < Math.min(items.length, decl.count); i++) {
        writeElement(view, base + decl.offset + i * size, decl.type, items[i]);
      }
    }
  }
}

/**
 * Decode a struct from `bytes` at `offset`. Bytes past the end of `bytes` read as zero, the way
 * the kernel zero-extends a short user struct.
 */
export function decode<F extends FieldMap>(
  layout: StructLayout<F>,
  bytes: Uint8Array,
  offset = 0,
): StructValues<F> {
  let source = bytes;
  let base = offset;
  if (offset < 0 || offset + layout.size > bytes.byteLength) {
    source = new Uint8Array(layout.size);
    if (offset < bytes.byteLength && offset >= 0) source.set(bytes.subarray(offset));
    base = 0;
  }
  return readAt(layout, viewOf(source), base) as StructValues<F>;
}

/** Write the given fields of a struct into `bytes` at `offset`; other bytes are left as they are. */
export function encodeInto<F extends FieldMap>(
  layout: StructLayout<F>,
  bytes: Uint8Array,
  values: Partial<StructValues<F>>,
  offset = 0,
): void {
  if (offset < 0 || offset + layout.size > bytes.byteLength) {
    throw new RangeError(
      `struct ${layout.name} (${layout.size} bytes) does not fit at ${offset} in ${bytes.byteLength} bytes`,
    );
  }
  writeAt(layout, viewOf(bytes), offset, values as Record<string, unknown>);
}

/**
 * A new zeroed buffer of `layout.size + extra` bytes with the given fields written. `extra` makes
 * room for trailing data (capability chains, flexible arrays).
 */
export function encode<F extends FieldMap>(
  layout: StructLayout<F>,
  values: Partial<StructValues<F>>,
  extra = 0,
): Uint8Array {
  const bytes = new Uint8Array(layout.size + extra);
  encodeInto(layout, bytes, values);
  return bytes;
}

/**
 * Decode up to `count` consecutive structs (a C flexible array member) starting at `offset`;
 * elements that do not fit entirely in `bytes` are left out, so a truncated buffer yields the
 * complete elements only.
 *
 * @example
 * ```ts
 * const range = defineStruct("vfio_iova_range", 16, { start: u64(0), end: u64(8) });
 * decodeArray(range, new Uint8Array(32), 0, 2).length; // 2
 * ```
 */
export function decodeArray<F extends FieldMap>(
  element: StructLayout<F>,
  bytes: Uint8Array,
  offset: number,
  count: number,
): StructValues<F>[] {
  const out: StructValues<F>[] = [];
  for (let i = 0; i < count; i++) {
    const at = offset + i * element.size;
    if (at < 0 || at + element.size > bytes.byteLength) break;
    out.push(decode(element, bytes, at));
  }
  return out;
}
