// Optimizer updates with the semantics of shaders/optim.wgsl, one fused pass over a parameter:
// SGD (weight decay), SGD with momentum (dampening, Nesterov; `first` starts the buffer as d_p),
// and Adam / AdamW (DECOUPLED). Every view from its <binding>_offset. Four lanes at a time, then
// a tail.

import { claim, f32At, i32At, u32At } from './common';
import { sgd as S, sgd_momentum as M, adam as A } from './generated/fields';

// @ts-ignore: decorator
@inline const CHUNK: i32 = 8192;

// @ts-ignore: decorator
@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

/** Lanes count of elements at p: a vector, or the tail lane by lane (other lanes 0). */
// @ts-ignore: decorator
@inline function get(p: usize, count: i32): v128 {
  if (count == 4) return v128.load(p);
  let v = splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

// @ts-ignore: decorator
@inline function set(p: usize, v: v128, count: i32): void {
  if (count == 4) {
    v128.store(p, v);
    return;
  }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

export function sgd(args: usize, scratch: usize): void {
  const n = i32At(args, S.n);
  const param = <usize>u32At(args, S.bind.param) + (<usize>u32At(args, S.param_offset) << 2);
  const grad = <usize>u32At(args, S.bind.grad) + (<usize>u32At(args, S.grad_offset) << 2);
  const lr = splat(f32At(args, S.lr)), wd = splat(f32At(args, S.weight_decay));
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    for (let i = t * CHUNK; i < end; i += 4) {
      const count = min(4, end - i);
      const o = <usize>i << 2;
      const x = get(param + o, count);
      const d = f32x4.add(get(grad + o, count), f32x4.mul(wd, x));
      set(param + o, f32x4.sub(x, f32x4.mul(lr, d)), count);
    }
  }
}

export function sgd_momentum(args: usize, scratch: usize): void {
  const n = i32At(args, M.n);
  const param = <usize>u32At(args, M.bind.param) + (<usize>u32At(args, M.param_offset) << 2);
  const grad = <usize>u32At(args, M.bind.grad) + (<usize>u32At(args, M.grad_offset) << 2);
  const buf = <usize>u32At(args, M.bind.buf) + (<usize>u32At(args, M.buf_offset) << 2);
  const lr = splat(f32At(args, M.lr)), wd = splat(f32At(args, M.weight_decay));
  const mom = splat(f32At(args, M.momentum)), damp = splat(1 - f32At(args, M.dampening));
  const first = u32At(args, M.first) != 0, nesterov = u32At(args, M.NESTEROV) != 0;
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    for (let i = t * CHUNK; i < end; i += 4) {
      const count = min(4, end - i);
      const o = <usize>i << 2;
      const x = get(param + o, count);
      let d = f32x4.add(get(grad + o, count), f32x4.mul(wd, x));
      const b = first ? d : f32x4.add(f32x4.mul(mom, get(buf + o, count)), f32x4.mul(damp, d));
      set(buf + o, b, count);
      d = nesterov ? f32x4.add(d, f32x4.mul(mom, b)) : b;
      set(param + o, f32x4.sub(x, f32x4.mul(lr, d)), count);
    }
  }
}

export function adam(args: usize, scratch: usize): void {
  const n = i32At(args, A.n);
  const param = <usize>u32At(args, A.bind.param) + (<usize>u32At(args, A.param_offset) << 2);
  const grad = <usize>u32At(args, A.bind.grad) + (<usize>u32At(args, A.grad_offset) << 2);
  const mp = <usize>u32At(args, A.bind.m) + (<usize>u32At(args, A.m_offset) << 2);
  const vp = <usize>u32At(args, A.bind.v) + (<usize>u32At(args, A.v_offset) << 2);
  const lrf = f32At(args, A.lr), wdf = f32At(args, A.weight_decay);
  const b1 = splat(f32At(args, A.beta1)), b2 = f32At(args, A.beta2);
  const oneB1 = splat(1 - f32At(args, A.beta1)), b2v = splat(b2), oneB2 = splat(1 - b2);
  const eps = splat(f32At(args, A.eps)), stepSize = splat(f32At(args, A.step_size)), bc2 = splat(f32At(args, A.bc2_sqrt));
  const decoupled = u32At(args, A.DECOUPLED) != 0;
  const decay = splat(1 - lrf * wdf), wd = splat(wdf);
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    for (let i = t * CHUNK; i < end; i += 4) {
      const count = min(4, end - i);
      const o = <usize>i << 2;
      let x = get(param + o, count);
      let g = get(grad + o, count);
      if (decoupled) x = f32x4.mul(x, decay);
      else g = f32x4.add(g, f32x4.mul(wd, x));
      const m0 = get(mp + o, count);
      const m = f32x4.add(m0, f32x4.mul(oneB1, f32x4.sub(g, m0)));
      const v = f32x4.add(f32x4.mul(b2v, get(vp + o, count)), f32x4.mul(f32x4.mul(oneB2, g), g));
      set(mp + o, m, count);
      set(vp + o, v, count);
      const denom = f32x4.add(f32x4.div(f32x4.sqrt(v), bc2), eps);
      set(param + o, f32x4.sub(x, f32x4.div(f32x4.mul(stepSize, m), denom)), count);
    }
  }
}
