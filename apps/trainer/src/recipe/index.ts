export { RecipeError, formatPath } from './errors.js';
export type { RecipeProblem } from './errors.js';
export { configFields, findMethod, getMethod, listMethods, methodsOf, registerTrainerMethod, takesMethod } from './methods.js';
export type { AnyTrainerMethod, FieldInfo, MethodKind, StageIssue, TrainerMethod } from './methods.js';
export { loadRecipeFile, parseRecipeText, resolveRecipe } from './load.js';
export { STAGE_KINDS, stageSchemas } from './schema.js';
export type { DataRef, ModelRef, ResolvedRecipe, StageKind, StageOf, StageSpec } from './schema.js';
