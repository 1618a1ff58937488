// The NIMService domain: pure functions shared by the webhook server and the CLI.
export type { Cause, Warning, Verdict, Operation, ReviewInput, JsonObject } from './types.js'
export { validateNIMService, checksOperation, beingDeleted } from './validate.js'
export { mutateNIMService, TOTAL_ANNOTATION_SIZE_LIMIT, type Mutation, type MutationInput } from './mutate.js'
export { renderHpa, hpaAnnotations, HPA_ANNOTATION, HPA_SHA_ANNOTATION } from './hpa-render.js'
export { validateHpaSpec } from './hpa-validation.js'
export { RULES, ruleInfo, type RuleInfo } from './codes.js'
export { MSG_REPLICAS, MSG_MULTINODE } from './rules.js'
