// What the server answers when it cannot or must not review: the 4xx body for a request that is not a
// review, and the denial for a review that failed because of a bug of ours. The CLI's `review`
// command answers with the same, so both doors stay byte-identical.
import type { AdmissionResponse } from './review.js'

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
