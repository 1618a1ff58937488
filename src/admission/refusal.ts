// What the server answers when it cannot or must not review: the 4xx body for a request that is not a
// review, and the denial for a review that failed because of a bug of ours. The CLI's `review`
// command answers with the same, so both doors stay byte-identical.
import type { Warning } from '../nimservice/types.js'
import { formatWarnings, WARNING_CHARS, type AdmissionResponse } from './review.js'

export interface RefusalBody { error: string, reason: string, message: string }

export function refusalBody (statusCode: number, reason: string, message: string): RefusalBody {
  const error = statusCode === 415 ? 'Unsupported Media Type' : statusCode === 413 ? 'Payload Too Large' : 'Bad Request'
  return { error, reason, message }
}

// A bug must not become a 500 (the apiserver would apply failurePolicy with no explanation): the
// review is answered, denied, with a message that says what happened.
export function internalErrorResponse (uid: string): AdmissionResponse {
  return {
    uid,
    allowed: false,
    status: { metadata: {}, status: 'Failure', code: 500, reason: 'InternalError', message: `nim-admission could not check this object (request ${uid}); this is a bug in nim-admission, see its logs` }
  }
}

/** What /validate answers for a review stopped by its budget, named after the webhook's failurePolicy. */
export type BudgetFailurePolicy = 'Fail' | 'Ignore'
/** Which budget ran out: the review's time, or its worker's heap. */
export type BudgetResource = 'time' | 'memory'

export interface BudgetAnswer {
  endpoint: 'mutate' | 'validate'
  uid: string
  policy: BudgetFailurePolicy
  budgetMs: number
  resource: BudgetResource
}

const ran = (a: BudgetAnswer): string => a.resource === 'time' ? `within its ${a.budgetMs} ms budget` : 'within its memory budget'

/** Warning NIM114, as the review's only warning. */
export function budgetWarning (a: BudgetAnswer): Warning {
  const what = a.endpoint === 'mutate'
    ? 'it is admitted unchanged (no defaults, no rendered HPA)'
    : 'it is admitted unchecked (--budget-failure-policy Ignore)'
  return { code: 'NIM114', field: 'spec', message: `nim-admission could not finish reviewing this object ${ran(a)}, so ${what}: make it smaller (fewer or shorter list items and map entries)` }
}

/**
 * The answer to a review stopped by its budget: /mutate allows it with NIM114 and no patch (denying is
 * /validate's job); /validate denies it under Fail, so that being slow is never a way past validation,
 * and allows it with NIM114 under Ignore.
 */
export function budgetResponse (a: BudgetAnswer): AdmissionResponse {
  if (a.endpoint === 'mutate' || a.policy === 'Ignore') {
    return { uid: a.uid, allowed: true, warnings: formatWarnings([budgetWarning(a)], WARNING_CHARS[a.endpoint]) }
  }
  return {
    uid: a.uid,
    allowed: false,
    status: {
      metadata: {},
      status: 'Failure',
      code: a.resource === 'time' ? 504 : 413,
      reason: a.resource === 'time' ? 'Timeout' : 'RequestEntityTooLarge',
      message: `nim-admission could not finish checking this object ${ran(a)} (request ${a.uid}), so it is denied (--budget-failure-policy Fail): make it smaller (fewer or shorter list items and map entries)`
    }
  }
}
