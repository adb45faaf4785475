// The page's decoder: runs the op list that aekit/explore/decoder.py traced from the model's decode(),
// on one code at a time. Values are float32 (as in torch); sums are taken in float64, which keeps the
// result within float32 rounding of torch's.
"use strict";
const AekitDecoder = (function () {
  // erf to ~1e-7 (Abramowitz & Stegun 7.1.26 is not enough near 0; this is Numerical Recipes' erfc by
  // Chebyshev fit, fractional error < 1.2e-7), for GELU's exact form 0.5 x (1 + erf(x / sqrt 2)).
  function erfc(x) {
    const z = Math.abs(x), t = 2 / (2 + z);
    const ty = 4 * t - 2;
    const cof = [-1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2, -9.561514786808631e-3,
      -9.46595344482036e-4, 3.66839497852761e-4, 4.2523324806907e-5, -2.0278578112534e-5, -1.624290004647e-6,
      1.303655835580e-6, 1.5626441722e-8, -8.5238095915e-8, 6.529054439e-9, 5.059343495e-9, -9.91364156e-10,
      -2.27365122e-10, 9.6467911e-11, 2.394038e-12, -6.886027e-12, 8.94487e-13, 3.13092e-13, -1.12708e-13,
      3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16, -2.8e-17];
    let d = 0, dd = 0;
    for (let j = cof.length - 1; j > 0; j--) {
      const tmp = d;
      d = ty * d - dd + cof[j];
      dd = tmp;
    }
    const r = t * Math.exp(-z * z + 0.5 * (cof[0] + ty * d) - dd);
    return x >= 0 ? r : 2 - r;
  }
  const SELU_ALPHA = 1.6732632423543772, SELU_SCALE = 1.0507009873554805;
  const ACTIVATIONS = {
    sigmoid: (v) => 1 / (1 + Math.exp(-v)),
    relu: (v) => (v > 0 ? v : 0),
    tanh: Math.tanh,
    gelu: (v) => 0.5 * v * (2 - erfc(v / Math.SQRT2)),
    tanh_gelu: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))),
    selu: (v) => SELU_SCALE * (v > 0 ? v : SELU_ALPHA * (Math.exp(v) - 1)),
  };

  function linear(x, w, b, rows, cols) {  // (cols,) -> (rows,), w row-major (rows, cols) as nn.Linear
    const y = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = b ? b[r] : 0;
      const off = r * cols;
      for (let c = 0; c < cols; c++) s += w[off + c] * x[c];
      y[r] = s;
    }
    return y;
  }

  // ConvTranspose2d: weight (Cin, Cout, kH, kW); each input pixel scatters its kernel into the output.
  function convTranspose2d(x, op, w, b) {
    const [cin, cout, kh, kw] = op.wshape, [, h, wd] = op.in_shape, [, oh, ow] = op.out_shape;
    const [sh, sw] = op.stride, [ph, pw] = op.padding, [dh, dw] = op.dilation;
    const acc = new Float64Array(cout * oh * ow);
    for (let ci = 0; ci < cin; ci++) for (let iy = 0; iy < h; iy++) for (let ix = 0; ix < wd; ix++) {
      const v = x[(ci * h + iy) * wd + ix];
      if (v === 0) continue;
      for (let co = 0; co < cout; co++) {
        const wo = ((ci * cout + co) * kh) * kw;
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * sh - ph + ky * dh;
          if (oy < 0 || oy >= oh) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * sw - pw + kx * dw;
            if (ox >= 0 && ox < ow) acc[(co * oh + oy) * ow + ox] += v * w[wo + ky * kw + kx];
          }
        }
      }
    }
    return withBias(acc, b, cout, oh * ow);
  }

  // Conv2d: weight (Cout, Cin, kH, kW); each output pixel gathers its window.
  function conv2d(x, op, w, b) {
    const [cout, cin, kh, kw] = op.wshape, [, h, wd] = op.in_shape, [, oh, ow] = op.out_shape;
    const [sh, sw] = op.stride, [ph, pw] = op.padding, [dh, dw] = op.dilation;
    const acc = new Float64Array(cout * oh * ow);
    for (let co = 0; co < cout; co++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) {
      let s = 0;
      for (let ci = 0; ci < cin; ci++) for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh - ph + ky * dh;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = ox * sw - pw + kx * dw;
          if (ix >= 0 && ix < wd) s += x[(ci * h + iy) * wd + ix] * w[((co * cin + ci) * kh + ky) * kw + kx];
        }
      }
      acc[(co * oh + oy) * ow + ox] = s;
    }
    return withBias(acc, b, cout, oh * ow);
  }

  // permute: one sample's values of shape in_shape, their axes reordered by perm (torch's permute without the batch).
  function permute(x, shape, perm) {
    const n = shape.length, out = new Float32Array(x.length), outShape = perm.map((p) => shape[p]);
    const stride = new Array(n).fill(1);
    for (let d = n - 2; d >= 0; d--) stride[d] = stride[d + 1] * shape[d + 1];
    const idx = new Array(n).fill(0);
    for (let o = 0; o < x.length; o++) {
      let off = 0;
      for (let d = 0; d < n; d++) off += idx[d] * stride[perm[d]];
      out[o] = x[off];
      for (let d = n - 1; d >= 0; d--) { if (++idx[d] < outShape[d]) break; idx[d] = 0; }
    }
    return out;
  }

  function withBias(acc, b, channels, plane) {
    const y = new Float32Array(acc.length);
    for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) y[c * plane + i] = acc[c * plane + i] + (b ? b[c] : 0);
    return y;
  }

  function operand(side, inputs, arrays) {  // a value, an array of one sample's size, or a number
    if ("value" in side) return inputs[side.value];
    if ("array" in side) return arrays[side.array];
    return side.number;
  }

  function binary(op, inputs, arrays) {
    const a = operand(op.a, inputs, arrays), b = operand(op.b, inputs, arrays);
    const f = { add: (u, v) => u + v, sub: (u, v) => u - v, mul: (u, v) => u * v }[op.op];
    const y = new Float32Array(op.size);
    for (let i = 0; i < op.size; i++) y[i] = f(typeof a === "number" ? a : a[i], typeof b === "number" ? b : b[i]);
    return y;
  }

  function step(op, inputs, arrays) {
    const x = inputs[0];
    switch (op.op) {
      case "linear": return linear(x, arrays[op.w], op.b === null ? null : arrays[op.b], op.rows, op.cols);
      case "conv_transpose2d": return convTranspose2d(x, op, arrays[op.w], op.b === null ? null : arrays[op.b]);
      case "conv2d": return conv2d(x, op, arrays[op.w], op.b === null ? null : arrays[op.b]);
      case "affine": { const s = arrays[op.scale], t = arrays[op.shift]; return x.map((v, i) => v * s[i] + t[i]); }
      case "permute": return permute(x, op.in_shape, op.perm);
      case "clamp": return x.map((v) => Math.min(op.max === null ? v : op.max, Math.max(op.min === null ? v : op.min, v)));
      case "add": case "sub": case "mul": return binary(op, inputs, arrays);
      default:
        if (op.op in ACTIVATIONS) { const f = ACTIVATIONS[op.op]; return x.map((v) => f(v)); }
        throw new Error("the page decoder cannot run op " + op.op);
    }
  }

  // decode(program, arrays, code): program = {ops, out}; arrays = Float32Arrays the ops index; code = numbers.
  function decode(program, arrays, code) {
    const values = [Float32Array.from(code)];
    for (const op of program.ops) values.push(step(op, op.in.map((i) => values[i]), arrays));
    return values[program.out];
  }

  return { decode, erfc };
})();
