/**
 * A small layer set for examples and curvature tools: dense layers, activations and the
 * multilayer perceptron `mlp`, all written in the library's differentiable ops, so every
 * transform (grad, hvp, hessian, jvp, …) goes through them.
 */
import { checkOptions } from "../options.ts";
import { add, greater, sigmoid, tanh, where } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { uniform } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import type { Device } from "../device.ts";
import { tidy } from "../memory.ts";
import { fmtShape } from "../shape.ts";
import { describeValue } from "../ops/common.ts";
import { flattenParams, unflattenParams } from "./params.ts";

/** The activations {@linkcode mlp} and {@linkcode activate} know. */
export type Activation = "sigmoid" | "tanh" | "relu" | "identity";

/**
 * `max(x, 0)`. The derivative at exactly 0 is taken as 0 (as JAX does).
 *
 * @example
 * ```ts
 * import { relu, tensor } from "@curvature/curvature";
 * console.log(await relu(tensor([-1, 0, 2])).toArray()); // [0, 0, 2]
 * ```
 */
export function relu(x: Tensor): Tensor {
  return tidy(() => where(greater(x, 0), x, 0));
}

/**
 * Applies the named activation elementwise.
 *
 * @example
 * ```ts
 * import { activate, tensor } from "@curvature/curvature";
 * console.log(await activate(tensor([0]), "sigmoid").toArray()); // [0.5]
 * ```
 */
export function activate(x: Tensor, activation: Activation): Tensor {
  switch (activation) {
    case "sigmoid":
      return sigmoid(x);
    case "tanh":
      return tanh(x);
    case "relu":
      return relu(x);
    case "identity":
      return x;
    default:
      throw new TypeError(
        `activate: unknown activation ${
          JSON.stringify(activation)
        }; expected "sigmoid", "tanh", "relu" or "identity"`,
      );
  }
}

/**
 * A dense (fully connected) layer: `x W + b` for inputs `x` of shape `[N, in]`, weights
 * `W` of shape `[in, out]` and bias `b` of shape `[out]`; the result is `[N, out]`.
 *
 * @example
 * ```ts
 * import { dense, tensor } from "@curvature/curvature";
 * const y = dense(tensor([[1, 2]]), tensor([[1, 0, 1], [0, 1, 1]]), tensor([0, 0, 10]));
 * console.log(await y.toArray()); // [[1, 2, 13]]
 * ```
 */
export function dense(x: Tensor, w: Tensor, b: Tensor): Tensor {
  if (w.rank !== 2 || b.rank !== 1 || b.shape[0] !== w.shape[1] || x.shape.at(-1) !== w.shape[0]) {
    throw new RangeError(
      `dense: expected x [..., in], W [in, out] and b [out]; got x ${fmtShape(x.shape)}, W ${
        fmtShape(w.shape)
      }, b ${fmtShape(b.shape)}`,
    );
  }
  return tidy(() => add(matmul(x, w), b));
}

/** Options of {@linkcode mlp}. */
export interface MlpOptions {
  /** Seed of the library's counter-based generator for the initial parameters (default 0). */
  seed?: number;
  /** dtype of the parameters (default f32). */
  dtype?: "f32" | "f64";
  /** Device of the parameters (default: the default device). */
  device?: Device;
}

/** A multilayer perceptron made by {@linkcode mlp}: shapes, initial parameters, forward pass. */
export interface Mlp {
  /** Layer widths, inputs first: `[3, 5, 1]` is 3 inputs, 5 hidden units, 1 output. */
  readonly sizes: readonly number[];
  /** The hidden layers' activation; the output layer is linear. */
  readonly activation: Activation;
  /** Shapes of the parameter list: `[in, out]` weights and `[out]` biases, layer by layer. */
  readonly shapes: readonly (readonly number[])[];
  /** Total number of parameters (the length of the flat vector). */
  readonly numParams: number;
  /** The initial parameters as one flat vector (see {@linkcode flattenParams}). */
  readonly params: Tensor;
  /** The network's outputs `[N, out]` for inputs `[N, in]` and flat parameters. */
  apply(params: Tensor, inputs: Tensor): Tensor;
  /** The per-layer `{ w, b }` views of a flat parameter vector (differentiable slices). */
  layers(params: Tensor): { w: Tensor; b: Tensor }[];
}

/**
 * A multilayer perceptron: dense layers of the given widths with `activation` between them
 * and a linear output layer. Parameters live in one flat vector, laid out layer by layer as
 * `W₀` (row-major `[in, out]`), `b₀`, `W₁`, `b₁`, …; they start at PyTorch's default for
 * linear layers, uniform in `±1/√in`, drawn from the library's seeded generator (layer l
 * uses counter offset 2l for W and 2l + 1 for b), so a seed gives the same network on
 * every backend.
 *
 * @example
 * ```ts
 * import { mlp, tensor } from "@curvature/curvature";
 * const net = mlp([3, 5, 1], "sigmoid", { seed: 1, dtype: "f64" });
 * console.log(net.numParams); // 26
 * const y = net.apply(net.params, tensor([[0.1, 0.2, 0.3]], { dtype: "f64" }));
 * console.log(y.shape); // [1, 1]
 * ```
 */
export function mlp(
  sizes: readonly number[],
  activation: Activation = "tanh",
  opts: MlpOptions = {},
): Mlp {
  if (
    !Array.isArray(sizes) || sizes.length < 2 ||
    !sizes.every((s) => Number.isSafeInteger(s) && s > 0)
  ) {
    throw new RangeError(
      `mlp: sizes must list at least two positive integer widths, got ${JSON.stringify(sizes)}`,
    );
  }
  if (!["sigmoid", "tanh", "relu", "identity"].includes(activation)) {
    throw new TypeError(`mlp: unknown activation ${JSON.stringify(activation)}`);
  }
  const shapes: number[][] = [];
  for (let l = 0; l + 1 < sizes.length; l++) shapes.push([sizes[l], sizes[l + 1]], [sizes[l + 1]]);
  const numParams = shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  checkOptions("mlp", opts, ["seed", "dtype", "device"]);
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`mlp: seed must be a non-negative integer, got ${describeValue(seed)}`);
  }
  const params = tidy(() =>
    flattenParams(shapes.map((sh, k) => {
      const bound = 1 / Math.sqrt(sh.length === 2 ? sh[0] : shapes[k - 1][0]);
      const u = uniform(sh, { seed, offset: k, dtype: opts.dtype ?? "f32", device: opts.device });
      return u.mul(2 * bound).sub(bound);
    }))
  );
  const layers = (p: Tensor) => {
    if (p.rank !== 1 || p.size !== numParams) {
      throw new RangeError(
        `mlp: expected a flat parameter vector of ${numParams} entries, got shape ${
          fmtShape(p.shape)
        }`,
      );
    }
    const parts = unflattenParams(p, shapes);
    const out: { w: Tensor; b: Tensor }[] = [];
    for (let l = 0; l < parts.length; l += 2) out.push({ w: parts[l], b: parts[l + 1] });
    return out;
  };
  return {
    sizes: [...sizes],
    activation,
    shapes,
    numParams,
    params,
    layers,
    apply(p: Tensor, inputs: Tensor): Tensor {
      return tidy(() => {
        const ls = layers(p);
        let h = inputs;
        ls.forEach(({ w, b }, l) => {
          h = dense(h, w, b);
          if (l + 1 < ls.length) h = activate(h, activation);
        });
        return h;
      });
    },
  };
}
