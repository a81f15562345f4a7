/** The total table of primitives: a primitive missing here (or a rule missing on one) fails type-checking. */
import type { Primitive, PrimitiveTable } from "./types.ts";
import { UNARY } from "./unary.ts";
import { BINARY, WHERE } from "./binary.ts";
import { REDUCE } from "./reduce.ts";
import { MATMUL } from "./matmul.ts";
import { MOVEMENT } from "./movement.ts";
import { LINALG } from "./linalg.ts";
import { FACTOR } from "./factor.ts";
import { BANDED } from "./banded.ts";

export const PRIMITIVES: PrimitiveTable<Primitive> = {
  ...UNARY,
  ...BINARY,
  ...WHERE,
  ...REDUCE,
  ...MATMUL,
  ...MOVEMENT,
  ...LINALG,
  ...FACTOR,
  ...BANDED,
};
