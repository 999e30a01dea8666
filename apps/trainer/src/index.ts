// @sparse/trainer: the library behind `sparse-train`: a small GPT in tfjs-core, the embedded
// corpus and tokenizers, the training loop and held-out evaluation, for later stages to reuse.
export {
  GPT,
  createGPT,
  gptForward,
  gptLoss,
  gptLogits2d,
  gptHidden,
  gptParamSpecs,
  initGPTValues,
  validateGPTConfig,
  DEFAULT_GPT_CONFIG,
  type GPTConfig,
  type GPTParams,
  type ParamSpec,
  type CreateGPTOptions,
} from './model/gpt.js';
export { ensureGradients } from './model/gradients.js';
export { generateCorpus, numberWords, DEFAULT_CORPUS_SEED, DEFAULT_CORPUS_CHARS, type CorpusOptions } from './data/corpus.js';
export { CharTokenizer, ByteTokenizer, type Tokenizer } from './data/tokenizer.js';
export {
  splitHeldOut,
  sampleBatch,
  evalWindowStarts,
  prepareText,
  prepareTokens,
  embeddedData,
  type Split,
  type Batch,
  type TextData,
} from './data/dataset.js';
export { trainLoop, lrAt, type TrainOptions, type TrainResult, type StepInfo } from './train/loop.js';
export { NamedAdam, type AdamState } from './train/adam.js';
export { loadTextFile, DataFileError, MIN_DATA_BYTES } from './data/files.js';
export { evaluateEnsemblePerplexity, evaluatePerplexity, type EnsembleEvalModel, type EnsembleEvalOptions, type EvalOptions, type EvalResult } from './train/evaluate.js';
export { chooseBackend, type BackendChoice } from './backend.js';
export { createModel, defaultSpec, resolveSpec, paramShapes, linearsOf, initialValues, Llama, ModelSpecError, CheckpointError, type CreateModelOptions } from './model/index.js';
export { Decoder, ContextOverflowError, type DecoderActivationHook, type DecoderKVOptions, type DecoderKVStats, type DecoderOptions, type LinearInputStats } from './model/decode.js';
export { modelSites, linearSite, mlpActSite } from './model/sites.js';
export { rotateNorms, rotatedNorms, rightSingularBasis, type NormRotation, type RotatedNorm } from './model/rotate.js';
export { decoderActivationHook, restoreSparsifiers } from './methods/activation/sparsify.js';
export { attentionHooks } from './methods/attention/hooks.js';
export { ATTENTION_FILE, ATTENTION_FORMAT, attentionCheckpoint, restoreAttention } from './methods/attention/record.js';
export type { AttentionRecord, AttentionState } from './run/context.js';
export type { Architecture, ForwardHooks, LanguageModel, LinearInfo, ModelSpec } from './model/types.js';
export { saveCheckpoint, loadCheckpoint, readCheckpoint } from './model/checkpoint.js';
export { embeddedShiftedData } from './data/dataset.js';
export { loadJSONLFile } from './data/jsonl.js';
export { HFTokenizer } from './data/hf-tokenizer.js';
export { DEFAULT_RECIPE } from './recipe/default.js';
export { RecipeError, configFields, getMethod, listMethods, loadRecipeFile, parseRecipeText, registerTrainerMethod, resolveRecipe, STAGE_KINDS } from './recipe/index.js';
export type { AnyTrainerMethod, MethodKind, RecipeProblem, ResolvedRecipe, StageIssue, StageKind, StageSpec, TrainerMethod } from './recipe/index.js';
export type { StageArgs, StageOutcome } from './stages/common.js';
export { startRun, resumeRun, type RunOptions, type ResumeOptions, type RunSummary } from './run/runner.js';
export { CheckpointDamagedError, RecipeChangedError, RunDivergedError, RunFolderError, RunInterrupted, RunLockedError, RunWriteError } from './run/errors.js';
export { checkRunResources, checkStageShapes, machineMemory } from './run/preflight.js';
export { loadExportedModel } from './stages/export.js';
export { runSteps, type GradientStepsOptions, type StepsOptions, type StepsResult, type StepUpdate, type UpdateStepsOptions } from './train/steps.js';
export { SparseLinears, sparseLinearProduct, csrPattern, type CSRPattern } from './train/sparse-linear.js';
export { choosePath, sparsePathThreshold, sparsePathFile, cpuModel, DEFAULT_SPARSE_PATH, type SparsePathThreshold, type PathChoice } from './train/sparse-path.js';
