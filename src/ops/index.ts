/** All op functions, for the Tensor method forms and for rules. */
export * from "./elementwise.ts";
export * from "./reduce.ts";
export * from "./matmul.ts";
export * from "./movement.ts";
export * from "./linalg.ts";
export * from "./special.ts";
export * from "./diagonal.ts";
export * from "./einsum.ts";
