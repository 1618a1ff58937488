// A review worker: parses a large body and judges it with the same handlers as the event loop. It says
// who the review is for as soon as it is decoded, so the event loop can answer it by the budget should
// this thread have to be stopped before its verdict.
import { parentPort } from 'node:worker_threads'
import { HANDLERS, type Endpoint, type Outcome } from '../admission/handlers.js'
import { BadReview, decodeReview, encodeReview } from '../admission/review.js'
import { internalErrorResponse } from '../admission/refusal.js'
import { BodyError, parseJsonBytes } from './body.js'
import { clip, headerOf, summarize } from './review-line.js'
import type { ToWorker, FromWorker } from './review-pool.js'

const port = parentPort
if (port === null) throw new Error('review-worker.ts runs as a worker thread')

function judge (id: number, endpoint: Endpoint, bytes: Uint8Array): FromWorker {
  let review
  try {
    review = decodeReview(parseJsonBytes(bytes))
  } catch (err) {
    if (err instanceof BodyError) return { type: 'bad', id, statusCode: err.statusCode, code: err.code, message: err.message }
    if (err instanceof BadReview) return { type: 'bad', id, statusCode: err.statusCode, reason: err.reason, message: err.message }
    throw err
  }
  const req = review.request
  const header = headerOf(review.apiVersion, req)
  port?.postMessage({ type: 'decoded', id, header } satisfies FromWorker)
  let outcome: Outcome
  let failure: { message: string, stack?: string } | undefined
  try {
    outcome = HANDLERS[endpoint](req)
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    failure = { message: clip(e.message, 1024), ...(e.stack !== undefined ? { stack: clip(e.stack, 4096) } : {}) }
    outcome = { response: internalErrorResponse(req.uid), causes: [], warnings: [] }
  }
  return { type: 'done', id, json: JSON.stringify(encodeReview(review.apiVersion, outcome.response)), summary: summarize(header, outcome), ...(failure !== undefined ? { failure } : {}) }
}

port.on('message', (job: ToWorker) => {
  port.postMessage(judge(job.id, job.endpoint, job.bytes))
})
port.postMessage({ type: 'ready' } satisfies FromWorker)
