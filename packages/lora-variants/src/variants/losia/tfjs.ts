// The tfjs form of 'losia': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { ArgumentError, Random, type Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../../tfjs.js';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { checkScores, indexed, toCore, variantLayers } from '../helpers/tfjs.js';
import type { LoSiAConfig } from './config.js';
import { losiaRelocalize } from './variant.js';

/** LoSiA: the core goes to W[R, C] by a row gather and a column gather over zero-padded maps. */
export const losiaForm: TfAdapterForm = {
  variant: 'losia',
  training: losiaTraining,
  effectiveWeight: ({ base, vars, state }) => {
    const { rows, cols } = indexed(state).indices;
    const [out, inp] = state.shape;
    const map = (sel: Int32Array, len: number) => {
      const m = new Int32Array(len).fill(sel.length);
      sel.forEach((c, t) => (m[c] = t));
      return tf.tensor1d(m, 'int32');
    };
    const core = vars.losia_core!;
    const padded = tf.pad(core, [[0, 1], [0, 1]]);
    return tf.add(base, tf.gather(tf.gather(padded, map(rows!, out), 0), map(cols!, inp), 1));
  },
};

/**
 * LoSiA's re-localization, on each layer of a losia adapter (default the active one) that `scores`
 * gives a matrix [out, in] for: the trained core goes into the weight (through the layer's mask unless
 * densify, default: as the adapter was added) and a zero core starts on the subnet the new scores pick
 * (`losiaRelocalize`). The core variables keep their identity and shape, so an optimizer's variable
 * list stays valid. Returns the layers re-localized.
 */
export function relocalizeLoSiA(
  model: AdapterModel,
  scores: (layer: string) => Tensor | tf.Tensor | undefined,
  opts: { adapter?: string; densify?: boolean } = {},
): string[] {
  const { adapter, layers } = variantLayers(model, 'losia', 'relocalizeLoSiA', opts.adapter);
  if (model.mergedAdapter !== null) throw new ArgumentError(`relocalizeLoSiA: adapter '${model.mergedAdapter}' is merged; unmerge it first`);
  const densify = opts.densify ?? model.densifies(adapter);
  const states = model.adapterStates(adapter);
  const done: string[] = [];
  for (const n of layers) {
    const sc = scores(n);
    if (sc === undefined) continue;
    const state = states[n] as IndexedAdapterState<LoSiAConfig>;
    const s = checkScores(n, sc, state.shape, 'relocalizeLoSiA');
    const next = losiaRelocalize(toCore(model.weights[n]!), state, s, new Random(0), { mask: model.mask(n), densify });
    model.weights[n]!.assign(tf.tensor(next.base.data, next.base.shape));
    model.setLayerState(adapter, n, next.state);
    const core = model.layerVariables(n, adapter).losia_core!;
    tf.tidy(() => core.assign(tf.zerosLike(core)));
    done.push(n);
  }
  return done;
}

/** Sets the subnet (rows and columns) of one layer of a losia adapter, e.g. when resuming after re-localizations. */
export function setLoSiASubnet(model: AdapterModel, adapterName: string, layer: string, subnet: { rows: ArrayLike<number>; cols: ArrayLike<number> }): void {
  const { layers } = variantLayers(model, 'losia', 'setLoSiASubnet', adapterName);
  if (!layers.includes(layer)) throw new ArgumentError(`setLoSiASubnet: adapter '${adapterName}' has no layer '${layer}'`);
  const st = model.adapterStates(adapterName)[layer] as IndexedAdapterState<LoSiAConfig>;
  const check = (field: 'rows' | 'cols', bound: number): Int32Array => {
    const v = subnet?.[field];
    const want = st.indices[field]!.length;
    if (v?.length !== want) throw new ArgumentError(`setLoSiASubnet: ${layer}: ${field} has ${v?.length} entries, expected ${want}`);
    const out = Int32Array.from(v);
    out.forEach((x, k) => {
      if (!Number.isInteger(v[k]) || x < 0 || x >= bound || (k > 0 && x <= out[k - 1]!)) {
        throw new ArgumentError(`setLoSiASubnet: ${layer}: ${field} must be increasing integers in [0, ${bound}), got ${String(v[k])} at ${k}`);
      }
    });
    return out;
  };
  model.setLayerState(adapterName, layer, { ...st, indices: { rows: check('rows', st.shape[0]), cols: check('cols', st.shape[1]) } } as IndexedAdapterState);
}

interface LoSiASaved {
  count: number;
  subnets: Record<string, { rows: number[]; cols: number[] }>;
}

/**
 * Periodic re-localization in training (config.every): before step k·every + 1 each layer's
 * trained core goes into its weight and the subnet is chosen again from data scores drawn for that step;
 * the new cores' optimizer moments start afresh. The subnets and the count ride in a checkpoint.
 */
function losiaTraining({ model, adapter, config, scores }: Parameters<NonNullable<TfAdapterForm['training']>>[0]): ReturnType<NonNullable<TfAdapterForm['training']>> {
  const every = (config as LoSiAConfig).every;
  if (every === undefined) return {};
  if (scores === undefined) throw new ArgumentError('losia: config.every needs data scores from the training loop (re-localization by sensitivity, gradient or fisher)');
  let count = 0;
  return {
    beforeStep(step) {
      if (step <= 1 || (step - 1) % every !== 0) return;
      const done = relocalizeLoSiA(model, scores(`relocalize-${step}`), { adapter });
      count++;
      return { reset: done.map((n) => model.layerVariables(n, adapter).losia_core!), event: { event: 'relocalize', step } };
    },
    state: (): LoSiASaved => ({
      count,
      subnets: Object.fromEntries(Object.entries(model.adapterStates(adapter)).map(([n, s]) => {
        const { rows, cols } = (s as IndexedAdapterState).indices;
        return [n, { rows: Array.from(rows!), cols: Array.from(cols!) }];
      })),
    }),
    load(saved) {
      const s = saved as LoSiASaved;
      for (const [n, sub] of Object.entries(s.subnets)) setLoSiASubnet(model, adapter, n, sub);
      count = s.count;
    },
    finish: () =>
      count === 0
        ? {}
        : {
            log: `re-localized the subnets ${count} times (every ${every} steps)`,
            note: `the PEFT files hold the last subnet's core only; ${count} earlier cores were merged into the weights at re-localization`,
          },
  };
}
