// `nim-admission review`: an AdmissionReview in, the webhook's exact answer out, for "why was this denied".
// The body goes through the same steps as in the server (webhook-app.ts): its JSON body parser (body.ts),
// decodeReview, the endpoint's handler, encodeReview, JSON.stringify.
import { readFile } from 'node:fs/promises'
import { internalErrorResponse, refusalBody } from '../admission/refusal.js'
import type { Command } from 'commander'
import { BadReview, decodeReview, encodeReview } from '../admission/review.js'
import { HANDLERS, type Endpoint, type Outcome } from '../admission/handlers.js'
import { defaultOptions } from '../server/options.js'
import { BodyError, parseJsonBytes, reasonOf, tooLarge } from '../server/body.js'
import { processIo, STDIN, STDIN_NAME, usageErrorsExit2, type CliIo } from './input.js'
import { fixFor } from './report.js'

export interface ReviewAnswer {
  /** The HTTP status the server would answer with. */
  statusCode: number
  /** The response body, byte for byte as the server sends it. */
  body: string
  /** For a 200: what the handler found. */
  outcome?: Outcome
  /** For a 4xx: why the request is not a review. */
  error?: { reason: string, message: string }
}

function refused (statusCode: number, reason: string, message: string): ReviewAnswer {
  return { statusCode, body: JSON.stringify(refusalBody(statusCode, reason, message)), error: { reason, message } }
}

/** Parses the body with the server's own parser (src/server/body.ts); a refusal is its 4xx answer. */
function parseBody (bytes: Buffer, bodyLimitBytes: number): unknown {
  try {
    if (bytes.length > bodyLimitBytes) throw tooLarge()
    return { body: parseJsonBytes(bytes) }
  } catch (err) {
    if (!(err instanceof BodyError)) throw err
    return refused(err.statusCode, reasonOf(err.code), err.message)
  }
}

/** What POST /validate or /mutate would answer to this body. */
export function answerReview (bytes: Buffer, endpoint: Endpoint, bodyLimitBytes = defaultOptions.bodyLimitBytes): ReviewAnswer {
  const parsed = parseBody(bytes, bodyLimitBytes)
  if ((parsed as ReviewAnswer).statusCode !== undefined) return parsed as ReviewAnswer
  let review
  try {
    review = decodeReview((parsed as { body: unknown }).body)
  } catch (err) {
    if (err instanceof BadReview) return refused(err.statusCode, err.reason, err.message)
    throw err
  }
  let outcome: Outcome
  try {
    outcome = HANDLERS[endpoint](review.request)
  } catch {
    outcome = { response: internalErrorResponse(review.request.uid), causes: [], warnings: [] }
  }
  return { statusCode: 200, body: JSON.stringify(encodeReview(review.apiVersion, outcome.response)), outcome }
}

/** The JSON Patch of a mutate response, decoded (an empty list when there is none). */
export function decodedPatch (answer: ReviewAnswer): unknown {
  const patch = answer.outcome?.response.patch
  return patch === undefined ? [] : JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as unknown
}

const SKIPPED: Record<string, string> = {
  other_kind: 'not an apps.nvidia.com NIMService',
  subresource: 'a subresource request',
  delete: 'a DELETE',
  connect: 'a CONNECT',
  deleting: 'an UPDATE of a NIMService being deleted (deletionTimestamp set), never blocked'
}

export function registerReviewCommand (program: Command, io: CliIo = processIo): void {
  const command = program.command('review')
    .description('answer an AdmissionReview (JSON) exactly as the webhook would: "why was this denied?"')
    .argument('[file]', 'AdmissionReview JSON file, or - for stdin', STDIN)
    .option('--mutate', 'answer as POST /mutate (default: /validate), and print the JSON Patch decoded')
    .addHelpText('after', `
stdout gets the response body byte for byte as the server sends it (one line of JSON); with --mutate,
the decoded JSON Patch follows as a second JSON document. stderr explains: each cause and warning with
its fix, or why the request was not checked.

Exit status: 0 allowed, 1 denied, 2 not a review (the server would answer 4xx: the same body is printed,
and the status and reason go to stderr) or the file cannot be read.

Examples:
  $ nim-admission review review.json
  $ nim-admission review --mutate review.json | jq -s '.[1]'
  $ jq '{apiVersion:"admission.k8s.io/v1",kind:"AdmissionReview",request:{uid:"1",operation:"CREATE",
       kind:{group:"apps.nvidia.com",version:"v1alpha1",kind:"NIMService"},object:.}}' nim.json \\
      | nim-admission review -`)
    .action(async (file: string, flags: { mutate?: boolean }) => {
      const name = file === STDIN ? STDIN_NAME : file
      let bytes: Buffer
      try {
        bytes = file === STDIN ? await io.readStdin() : await readFile(file)
      } catch (err) {
        const code = (err as { code?: unknown }).code
        const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : err instanceof Error ? err.message.split('\n')[0] : String(err)
        io.stderr(`nim-admission: ${name}: cannot read: ${why}\n`)
        io.setExitCode(2)
        return
      }
      const answer = answerReview(bytes, flags.mutate === true ? 'mutate' : 'validate')
      io.stdout(answer.body + '\n')
      if (answer.error !== undefined) {
        io.stderr(`nim-admission: ${name}: the server would answer HTTP ${answer.statusCode} (${answer.error.reason}): ${answer.error.message}\n`)
        io.setExitCode(2)
        return
      }
      if (flags.mutate === true) io.stdout(JSON.stringify(decodedPatch(answer), null, 2) + '\n')
      const outcome = answer.outcome as Outcome
      if (outcome.skipped !== undefined) {
        io.stderr(`nim-admission: not checked (${outcome.skipped}): ${SKIPPED[outcome.skipped] ?? outcome.skipped}; the webhook allows it unchanged\n`)
      }
      for (const c of outcome.causes) io.stderr(`error ${c.code} ${c.field}: ${c.message}${fixFor(c.code) !== undefined ? ` (fix: ${fixFor(c.code)})` : ''}\n`)
      for (const w of outcome.warnings) io.stderr(`warning ${w.code} ${w.field}: ${w.message}${fixFor(w.code) !== undefined ? ` (fix: ${fixFor(w.code)})` : ''}\n`)
      io.setExitCode(outcome.response.allowed ? 0 : 1)
    })
  usageErrorsExit2(command)
}
