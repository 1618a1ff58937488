// Carrying out a reconcile decision against the API: server-side apply of the HPA (field manager
// nim-admission, forced only with --take-over), a guarded delete, Events on the NIMService, metrics.
import type { Logger } from 'pino'
import type { KubeConfig } from '@kubernetes/client-node'
import { HPA_ANNOTATION } from '../nimservice/hpa-render.js'
import type { Action, KubeObject } from './reconcile.js'
import { NIM_API_VERSION, NIM_KIND } from './reconcile.js'
import type { ApplierMetrics } from './metrics.js'

export const FIELD_MANAGER = 'nim-admission'
export const EVENT_COMPONENT = 'nim-admission-applier'

/** Published Event reasons on the NIMService. */
export const EVENT_REASONS = {
  created: 'HPACreated',
  updated: 'HPAUpdated',
  deleted: 'HPADeleted',
  conflict: 'HPAConflict',
  malformed: 'HPAAnnotationInvalid',
  rejected: 'HPARejected'
} as const

export interface InvolvedObject {
  namespace: string
  name: string
  uid: string
  resourceVersion?: string
}

export interface EventSpec {
  type: 'Normal' | 'Warning'
  reason: string
  message: string
}

/** The API calls the applier makes, so tests and --dry-run can stand in for the apiserver. */
export interface ApplierKube {
  getHpa (namespace: string, name: string): Promise<KubeObject | undefined>
  applyHpa (manifest: KubeObject, opts: { force: boolean }): Promise<void>
  /** Deletes with uid (and resourceVersion) preconditions, so a replaced HPA is never deleted by mistake. */
  deleteHpa (namespace: string, name: string, pre: { uid: string, resourceVersion?: string }): Promise<void>
  createEvent (on: InvolvedObject, event: EventSpec): Promise<void>
}

/** The HTTP status of a client-node ApiException (or a watch error), if that is what `err` is. */
export function apiStatus (err: unknown): number | undefined {
  const e = err as { code?: unknown, statusCode?: unknown } | null
  if (typeof e?.code === 'number') return e.code
  if (typeof e?.statusCode === 'number') return e.statusCode
  return undefined
}

/** The apiserver's Status message of a failed call, or the error's own message; one line. */
export function apiMessage (err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body
  let parsed: unknown = body
  if (typeof body === 'string') {
    try { parsed = JSON.parse(body) } catch { parsed = undefined }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message
  if (typeof message === 'string' && message !== '') return message.split('\n')[0] ?? message
  if (typeof body === 'string' && body.trim() !== '') return body.trim().split('\n')[0] ?? body
  const own = err instanceof Error ? err.message : String(err)
  // client-node's ApiException message is "HTTP-Code: 404\nMessage: ...\nBody: ...": keep the useful part.
  const m = /Message: (.*)/.exec(own)
  return m?.[1] ?? own.split('\n')[0] ?? own
}

let eventSeq = 0
function eventName (object: string, now: number): string {
  // client-go names Events <object>.<unix nanos in hex>; a sequence keeps two in one millisecond apart.
  const nanos = BigInt(now) * 1_000_000n + BigInt(eventSeq++ % 1_000_000)
  return `${object}.${nanos.toString(16)}`
}

export async function kubeApplierClient (kc: KubeConfig, opts: { instance: string }): Promise<ApplierKube> {
  const k8s = await import('@kubernetes/client-node')
  const autoscaling = kc.makeApiClient(k8s.AutoscalingV2Api)
  const core = kc.makeApiClient(k8s.CoreV1Api)
  const applyHeader = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply)
  return {
    async getHpa (namespace, name) {
      try {
        return await autoscaling.readNamespacedHorizontalPodAutoscaler({ name, namespace }) as KubeObject
      } catch (err) {
        if (apiStatus(err) === 404) return undefined
        throw err
      }
    },
    async applyHpa (manifest, { force }) {
      const name = manifest.metadata?.name ?? ''
      const namespace = manifest.metadata?.namespace ?? ''
      await autoscaling.patchNamespacedHorizontalPodAutoscaler(
        { name, namespace, body: manifest, fieldManager: FIELD_MANAGER, fieldValidation: 'Strict', ...(force ? { force: true } : {}) },
        applyHeader)
    },
    async deleteHpa (namespace, name, pre) {
      try {
        await autoscaling.deleteNamespacedHorizontalPodAutoscaler({ name, namespace, body: { preconditions: pre, propagationPolicy: 'Background' } })
      } catch (err) {
        if (apiStatus(err) === 404) return
        throw err
      }
    },
    async createEvent (on, event) {
      const now = new Date()
      await core.createNamespacedEvent({
        namespace: on.namespace,
        body: {
          metadata: { name: eventName(on.name, now.getTime()), namespace: on.namespace },
          involvedObject: { apiVersion: NIM_API_VERSION, kind: NIM_KIND, namespace: on.namespace, name: on.name, uid: on.uid, ...(on.resourceVersion !== undefined ? { resourceVersion: on.resourceVersion } : {}) },
          type: event.type,
          reason: event.reason,
          message: event.message.slice(0, 1024),
          source: { component: EVENT_COMPONENT },
          reportingComponent: EVENT_COMPONENT,
          reportingInstance: opts.instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1
        }
      })
    }
  }
}

/**
 * Emits Events on NIMServices, suppressing a repeat of the same reason and message on the same object
 * within `windowMs` (the periodic resync would otherwise repeat every conflict every few minutes).
 */
export class EventRecorder {
  private readonly seen = new Map<string, number>()
  constructor (private readonly kube: Pick<ApplierKube, 'createEvent'>, private readonly opts: { windowMs?: number, now?: () => number, logger?: Logger, metrics?: ApplierMetrics } = {}) {}

  async record (on: InvolvedObject, event: EventSpec): Promise<boolean> {
    const now = (this.opts.now ?? Date.now)()
    const window = this.opts.windowMs ?? 10 * 60_000
    const key = `${on.uid}\n${event.reason}\n${event.message}`
    const last = this.seen.get(key)
    if (last !== undefined && now - last < window) return false
    for (const [k, t] of this.seen) if (now - t >= window) this.seen.delete(k)
    try {
      await this.kube.createEvent(on, event)
      this.seen.set(key, now)
      return true
    } catch (err) {
      // An Event is a report, not the work: failing to record one never fails the reconcile.
      this.opts.metrics?.errors.inc({ reason: 'event' })
      this.opts.logger?.warn({ err: apiMessage(err), reason: event.reason, namespace: on.namespace, name: on.name }, 'cannot record Event')
      return false
    }
  }
}

export interface ExecuteContext {
  namespace: string
  name: string
  /** The NIMService, when it still exists (Events go on it). */
  owner?: InvolvedObject
  kube: ApplierKube
  events: EventRecorder
  metrics: ApplierMetrics
  logger: Logger
  dryRun: boolean
  /** Checked right before each write: false when this replica lost the Lease. */
  canWrite: () => boolean
  /** Dry-run output, one line per decision. */
  print: (line: string) => void
}

/**
 * What happened: done (nothing more to do for this key), retry (requeue with backoff), or
 * not-leader (requeue when leading again).
 */
export type Outcome = { result: 'done', action: Action['kind'] } | { result: 'retry', action: Action['kind'], error: string } | { result: 'not-leader' }

const shortSha = (sha: string | undefined): string => sha === undefined ? 'none' : sha.slice(0, 12)

export async function execute (action: Action, ctx: ExecuteContext): Promise<Outcome> {
  const { namespace, name, logger, metrics } = ctx
  const ref = `${namespace}/${name}`
  const log = logger.child({ namespace, name, action: action.kind })
  const dry = String(ctx.dryRun)
  const report = (event: EventSpec): Promise<unknown> => ctx.owner !== undefined && !ctx.dryRun ? ctx.events.record(ctx.owner, event) : Promise.resolve()

  switch (action.kind) {
    case 'none':
      log.debug({ reason: action.reason }, 'nothing to do')
      return { result: 'done', action: action.kind }
    case 'unchanged':
      metrics.unchanged.inc()
      log.debug({ sha256: action.sha }, 'HPA already carries the rendered sha256: skipped')
      return { result: 'done', action: action.kind }
    case 'malformed':
      metrics.errors.inc({ reason: 'malformed' })
      log.warn({ code: action.code }, action.message)
      if (ctx.dryRun) ctx.print(`dry-run: would report ${ref}: ${action.message}`)
      await report({ type: 'Warning', reason: EVENT_REASONS.malformed, message: `${HPA_ANNOTATION} not applied: ${action.message}` })
      return { result: 'done', action: action.kind }
    case 'conflict':
      metrics.conflicts.inc({ reason: 'foreign-owner' })
      log.warn(action.reason)
      if (ctx.dryRun) ctx.print(`dry-run: would leave ${ref} alone: ${action.reason}`)
      await report({ type: 'Warning', reason: EVENT_REASONS.conflict, message: action.reason })
      return { result: 'done', action: action.kind }
    case 'create':
    case 'update': {
      const verb = action.kind === 'create' ? 'create' : `update (${action.reason}${action.kind === 'update' && action.force ? ', forced' : ''})`
      if (ctx.dryRun) {
        metrics.applies.inc({ action: action.kind, dry_run: dry })
        ctx.print(`dry-run: would ${verb} HorizontalPodAutoscaler ${ref} sha256=${shortSha(action.sha)}${action.kind === 'update' ? ` (was ${shortSha(action.previousSha)})` : ''}`)
        ctx.print(`  ${JSON.stringify(action.manifest)}`)
        return { result: 'done', action: action.kind }
      }
      if (!ctx.canWrite()) return { result: 'not-leader' }
      try {
        await ctx.kube.applyHpa(action.manifest, { force: action.kind === 'update' && action.force })
      } catch (err) {
        if (apiStatus(err) === 409) {
          // Another field manager owns a field we set (someone edited our HPA): never fight over it.
          metrics.conflicts.inc({ reason: 'field-manager' })
          const message = `server-side apply of HorizontalPodAutoscaler ${ref} conflicts with another field manager: ${apiMessage(err)}; left as is (use --take-over to force)`
          log.warn(message)
          await report({ type: 'Warning', reason: EVENT_REASONS.conflict, message })
          return { result: 'done', action: 'conflict' }
        }
        if (apiStatus(err) === 400 || apiStatus(err) === 422) {
          // The apiserver refuses the manifest itself: retrying the same sha cannot help.
          metrics.errors.inc({ reason: 'rejected' })
          const message = `the apiserver rejected HorizontalPodAutoscaler ${ref} rendered from ${HPA_ANNOTATION}: ${apiMessage(err)}`
          log.warn({ status: apiStatus(err) }, message)
          await report({ type: 'Warning', reason: EVENT_REASONS.rejected, message })
          return { result: 'done', action: 'malformed' }
        }
        metrics.errors.inc({ reason: 'api' })
        return { result: 'retry', action: action.kind, error: `apply HorizontalPodAutoscaler ${ref}: ${apiMessage(err)}` }
      }
      metrics.applies.inc({ action: action.kind, dry_run: dry })
      log.info({ sha256: action.sha, ...(action.kind === 'update' ? { previousSha256: action.previousSha, reason: action.reason, force: action.force } : {}) }, `HPA ${action.kind === 'create' ? 'created' : 'updated'}`)
      await report({ type: 'Normal', reason: action.kind === 'create' ? EVENT_REASONS.created : EVENT_REASONS.updated, message: `HorizontalPodAutoscaler ${name} ${action.kind === 'create' ? 'created' : 'updated'} from ${HPA_ANNOTATION} (sha256 ${shortSha(action.sha)})` })
      return { result: 'done', action: action.kind }
    }
    case 'delete': {
      if (ctx.dryRun) {
        metrics.deletes.inc({ dry_run: dry })
        ctx.print(`dry-run: would delete HorizontalPodAutoscaler ${ref} (${action.reason})`)
        return { result: 'done', action: action.kind }
      }
      if (!ctx.canWrite()) return { result: 'not-leader' }
      try {
        await ctx.kube.deleteHpa(namespace, name, { uid: action.uid, ...(action.resourceVersion !== undefined ? { resourceVersion: action.resourceVersion } : {}) })
      } catch (err) {
        // 409: the preconditions failed (the HPA changed meanwhile); decide again.
        metrics.errors.inc({ reason: 'api' })
        return { result: 'retry', action: action.kind, error: `delete HorizontalPodAutoscaler ${ref}: ${apiMessage(err)}` }
      }
      metrics.deletes.inc({ dry_run: dry })
      log.info({ reason: action.reason }, 'HPA deleted')
      await report({ type: 'Normal', reason: EVENT_REASONS.deleted, message: `HorizontalPodAutoscaler ${name} deleted: ${action.reason}` })
      return { result: 'done', action: action.kind }
    }
  }
}
