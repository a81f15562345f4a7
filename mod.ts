/**
 * # curvature
 *
 * Second-order automatic differentiation for Deno, on WebGPU (hand-written WGSL) or the
 * CPU: tensors, composable transforms (grad, jvp, vjp, Hessian-vector products), and the
 * curvature tools built on them.
 *
 * @example
 * ```ts
 * import { device, tensor, tidy } from "@curvature/curvature";
 *
 * const dev = await device(); // WebGPU when an adapter exists, else the CPU
 * const x = tensor([1, 2, 3], { device: dev });
 * const y = tidy(() => x.mul(x).sum()); // 14
 * console.log(await y.item());
 * ```
 *
 * @module
 */

export {
  cpu,
  Device,
  device,
  type DeviceOptions,
  getDefaultDevice,
  type GpuTuning,
  setDefaultDevice,
} from "./src/device.ts";
export { Tensor, type TensorLike } from "./src/tensor.ts";
export type { Dtype, FloatDtype, TypedArray } from "./src/dtype.ts";
export {
  type HoldsTensors,
  keep,
  memory,
  type MemoryInfo,
  releaseCaches,
  tidy,
} from "./src/memory.ts";
export type { CacheStats } from "./src/lru.ts";
export {
  arange,
  type CreateOptions,
  eye,
  type EyeOptions,
  full,
  linspace,
  type NestedArray,
  normal,
  ones,
  rademacher,
  type RandomOptions,
  tensor,
  type TensorOptions,
  to,
  uniform,
  zeros,
} from "./src/ops/creation.ts";
export {
  abs,
  add,
  astype,
  atan,
  atan2,
  clip,
  cos,
  cosh,
  div,
  equal,
  exp,
  exp2,
  expm1,
  greater,
  greaterEqual,
  less,
  lessEqual,
  log,
  log1p,
  log2,
  maximum,
  minimum,
  mul,
  neg,
  notEqual,
  pow,
  reciprocal,
  sigmoid,
  sign,
  sin,
  sinh,
  sqrt,
  square,
  stopGradient,
  sub,
  tanh,
  where,
} from "./src/ops/elementwise.ts";
export {
  argmax,
  argmin,
  cumsum,
  max,
  mean,
  min,
  prod,
  std,
  sum,
  variance,
  variance as var,
  type VarianceOptions,
} from "./src/ops/reduce.ts";
export { diag, diagonal, tril, triu } from "./src/ops/diagonal.ts";
export { einsum } from "./src/ops/einsum.ts";
export { logcosh, logSoftmax, logsumexp, softmax, softplus } from "./src/ops/special.ts";
export { dot, matmul, outer } from "./src/ops/matmul.ts";
export {
  cholesky,
  choleskySolve,
  det,
  eigh,
  eigvalsh,
  inv,
  logdet,
  norm,
  type NormOrder,
  solve,
  trace,
} from "./src/ops/linalg.ts";
export {
  broadcastTo,
  concat,
  expandDims,
  flip,
  gather,
  mT,
  pad,
  reshape,
  roll,
  scatterAdd,
  slice,
  squeeze,
  stack,
  transpose,
} from "./src/ops/movement.ts";
export {
  grad,
  type GradOptions,
  hessian,
  type HessianOptions,
  hvp,
  jacobian,
  type JacobianOptions,
  jvp,
  type Pullback,
  valueAndGrad,
  vjp,
} from "./src/ad/transforms.ts";
export { jit, type JitOptions, type Jitted } from "./src/ad/jit.ts";
export { type Axis, type InAxes, type OutAxes, vmap } from "./src/ad/vmap.ts";
export { type CombProbeOptions, combProbes } from "./src/curvature/probes.ts";
export { hessianSparsity, jacobianSparsity, SparsityPattern } from "./src/curvature/pattern.ts";
export {
  type Coloring,
  type ColoringKind,
  type ColoringOrder,
  colorPattern,
} from "./src/curvature/coloring.ts";
export {
  sparseHessian,
  type SparseHessianOptions,
  sparseJacobian,
  type SparseJacobianOptions,
  SparseMatrix,
} from "./src/curvature/sparse.ts";
export { type Ordering, reverseCuthillMcKee } from "./src/linalg/ordering.ts";
export {
  type Estimate,
  hessianDiagonal,
  type HessianDiagonalOptions,
  hessianTrace,
  type HessianTraceOptions,
} from "./src/curvature/hutchinson.ts";
export { type EigenOptions, type EigenResult, hessianEigenvalues } from "./src/curvature/eigen.ts";
export { inverseHvp, type InverseHvpOptions } from "./src/curvature/inverse_hvp.ts";
export { cg, type CgOptions, type CgResult } from "./src/linalg/cg.ts";
export type { Progress, ProgressCallback } from "./src/progress.ts";
export {
  neumann,
  type NeumannOptions,
  type NeumannResult,
  neumannSeries,
} from "./src/linalg/neumann.ts";
export {
  activate,
  type Activation,
  dense,
  type Mlp,
  mlp,
  type MlpOptions,
  relu,
} from "./src/nn/layers.ts";
export { mseLoss, softmaxCrossEntropy } from "./src/nn/losses.ts";
export { flattenParams, unflattenParams } from "./src/nn/params.ts";
export { gaussNewtonVp } from "./src/curvature/gauss_newton.ts";
export { type KfacFactors, kfacFactors, kfacPrecondition } from "./src/curvature/kfac.ts";
export { minimize, minimizeMethods, registerMethod } from "./src/optim/minimize.ts";
export type {
  Bounds,
  Constraints,
  IterationCallback,
  IterationInfo,
  MethodName,
  MethodResult,
  MinimizeMethod,
  MinimizeOptions,
  MinimizeProblem,
  MinimizeResult,
  Multipliers,
} from "./src/optim/types.ts";
export {
  type BandedOptions,
  choleskyBanded,
  solveBanded,
  solveBandedGeneral,
} from "./src/linalg/banded.ts";
export {
  bandedHessian,
  type BandedHessianOptions,
  BandedMatrix,
  type BandLayout,
} from "./src/curvature/banded.ts";
