// tfjs-core ships its gradient functions in a separate module that only the @tensorflow/tfjs
// umbrella package imports; with tfjs-core alone nothing registers them and tf.grads fails
// ("gradient function not found for Reshape"). That module uses extensionless ESM imports that
// Node cannot load as is, so tsup bundles it into dist (tsup.config.ts) and vitest transforms it
// (vitest.config.ts). Registering the same gradients twice (another copy of tfjs did) is harmless.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';

/**
 * Confirms that tfjs's gradients are registered. Called by the model and the training loop,
 * which also keeps this module (and its registering import) in every bundle that trains.
 */
export function ensureGradients(): void {
  if (!tf.getGradient('Reshape') || !tf.getGradient('BatchMatMul')) {
    throw new Error('tfjs-core gradients are not registered: @tensorflow/tfjs-core/dist/register_all_gradients did not load');
  }
}
