// Carrying out a decision: Events on the NIMService for what was found, and in --mode write the one
// write decided (create, server-side apply of our own HPA, or a guarded delete). Every 403 from the
// apiserver is an Event, a metric and a failing /readyz (through `forbidden`), never a silent retry.
import type { Logger } from 'pino'
import type { JsonObject } from '../nimservice/types.js'
import { apiMessage, apiStatus, type KubeHttp } from './http.js'
import { NIM_API_VERSION, NIM_KIND } from './view.js'
import { REASONS, type Decision, type Finding } from './reconcile.js'
import type { ApplierMetrics } from './metrics.js'

export const FIELD_MANAGER = 'nim-admission'
export const EVENT_COMPONENT = 'nim-admission-applier'

export interface InvolvedObject { namespace: string, name: string, uid: string, resourceVersion?: string }

/** The API calls the applier makes, so tests can stand in for the apiserver. */
export interface ApplierKube {
  /** POST: fails with 409 when an HPA of that name exists, whoever made it (never merges into it). */
  createHpa (manifest: JsonObject): Promise<void>
  /** Server-side apply, forced: only ever called for an HPA that is nim-admission's own. */
  applyHpa (manifest: JsonObject): Promise<void>
  /** Deletes with uid and resourceVersion preconditions, so a replaced HPA is never deleted by mistake. */
  deleteHpa (namespace: string, name: string, pre: { uid: string, resourceVersion: string }): Promise<void>
  createEvent (on: InvolvedObject, event: Finding): Promise<void>
}

const HPA_PATH = '/apis/autoscaling/v2'
const hpaPath = (namespace: string, name?: string): string => `${HPA_PATH}/namespaces/${encodeURIComponent(namespace)}/horizontalpodautoscalers${name === undefined ? '' : `/${encodeURIComponent(name)}`}`

let eventSeq = 0
function eventName (object: string, now: number): string {
  // client-go names Events <object>.<unix nanos in hex>; a sequence keeps two in one millisecond apart.
  const nanos = BigInt(now) * 1_000_000n + BigInt(eventSeq++ % 1_000_000)
  return `${object}.${nanos.toString(16)}`
}

export function kubeApplierClient (http: KubeHttp, opts: { instance: string }): ApplierKube {
  const meta = (m: JsonObject): { namespace: string, name: string } => {
    const md = m.metadata as { namespace: string, name: string }
    return { namespace: md.namespace, name: md.name }
  }
  return {
    async createHpa (manifest) {
      const { namespace } = meta(manifest)
      await http.request('POST', `${hpaPath(namespace)}?fieldManager=${FIELD_MANAGER}&fieldValidation=Strict`, { body: manifest })
    },
    async applyHpa (manifest) {
      const { namespace, name } = meta(manifest)
      await http.request('PATCH', `${hpaPath(namespace, name)}?fieldManager=${FIELD_MANAGER}&fieldValidation=Strict&force=true`, { body: manifest, contentType: 'application/apply-patch+yaml' })
    },
    async deleteHpa (namespace, name, pre) {
      try {
        await http.request('DELETE', hpaPath(namespace, name), { body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: pre, propagationPolicy: 'Background' } })
      } catch (err) {
        if (apiStatus(err) === 404) return
        throw err
      }
    },
    async createEvent (on, event) {
      const now = new Date()
      const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z')
      await http.request('POST', `/api/v1/namespaces/${encodeURIComponent(on.namespace)}/events`, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: eventName(on.name, now.getTime()), namespace: on.namespace },
          involvedObject: { apiVersion: NIM_API_VERSION, kind: NIM_KIND, namespace: on.namespace, name: on.name, uid: on.uid, ...(on.resourceVersion !== undefined ? { resourceVersion: on.resourceVersion } : {}) },
          type: event.type,
          reason: event.reason,
          message: event.message.slice(0, 1024),
          source: { component: EVENT_COMPONENT },
          reportingComponent: EVENT_COMPONENT,
          reportingInstance: opts.instance,
          firstTimestamp: at,
          lastTimestamp: at,
          count: 1
        }
      })
    }
  }
}

/** The 403s the apiserver gave, by verb and resource; /readyz fails while any is unresolved. */
export class ForbiddenTracker {
  private readonly open = new Map<string, string>()
  constructor (private readonly metrics?: ApplierMetrics) {}

  failed (what: string, err: unknown): void {
    this.open.set(what, apiMessage(err))
    this.metrics?.forbidden.inc({ request: what })
    this.metrics?.forbiddenOpen.set(this.open.size)
  }

  succeeded (what: string): void {
    if (this.open.delete(what)) this.metrics?.forbiddenOpen.set(this.open.size)
  }

  /** Why the applier is not ready because of a 403, if it is not. */
  reason (): string | undefined {
    if (this.open.size === 0) return undefined
    return [...this.open].map(([what, msg]) => `403 Forbidden on ${what}: ${msg}`).join('; ')
  }
}

/**
 * Emits Events on NIMServices, suppressing a repeat of the same reason and message on the same object
 * within `windowMs` (the periodic resync would otherwise repeat every finding every few minutes).
 */
export class EventRecorder {
  private readonly seen = new Map<string, number>()
  constructor (private readonly kube: Pick<ApplierKube, 'createEvent'>, private readonly opts: { windowMs?: number, now?: () => number, logger?: Logger, metrics?: ApplierMetrics, forbidden?: ForbiddenTracker } = {}) {}

  async record (on: InvolvedObject, event: Finding): Promise<boolean> {
    const now = (this.opts.now ?? (() => performance.now()))()
    const window = this.opts.windowMs ?? 10 * 60_000
    const key = `${on.uid}\n${event.reason}\n${event.message}`
    const last = this.seen.get(key)
    if (last !== undefined && now - last < window) return false
    if (this.seen.size > 1000) for (const [k, t] of this.seen) if (now - t >= window) this.seen.delete(k)
    try {
      await this.kube.createEvent(on, event)
      this.seen.set(key, now)
      this.opts.forbidden?.succeeded('create events')
      return true
    } catch (err) {
      // An Event is a report, not the work: failing to record one never fails the reconcile.
      this.opts.metrics?.errors.inc({ reason: 'event' })
      if (apiStatus(err) === 403) this.opts.forbidden?.failed('create events', err)
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
  forbidden: ForbiddenTracker
  metrics: ApplierMetrics
  logger: Logger
  dryRun: boolean
  /** Checked right before each write: false when this replica lost the Lease. */
  canWrite: () => boolean
  /** Dry-run output, one line per planned write. */
  print: (line: string) => void
}

/** done: nothing more to do for this key; retry: requeue with backoff; not-leader: requeue when leading again. */
export type Outcome = { result: 'done' } | { result: 'retry', error: string } | { result: 'not-leader' }

export async function execute (decision: Decision, ctx: ExecuteContext): Promise<Outcome> {
  const { namespace, name, logger, metrics } = ctx
  const ref = `${namespace}/${name}`
  const log = logger.child({ namespace, name, state: decision.state })
  const report = async (f: Finding): Promise<void> => {
    if (f.reason === REASONS.refused || f.reason === REASONS.forbidden) log.error({ reason: f.reason }, f.message)
    else if (f.type === 'Warning') log.warn({ reason: f.reason }, f.message)
    else log.info({ reason: f.reason }, f.message)
    if (ctx.owner !== undefined && !ctx.dryRun) await ctx.events.record(ctx.owner, f)
  }
  for (const f of decision.findings) await report(f)
  const w = decision.write
  if (w === undefined) {
    if (decision.detail !== undefined) log.debug(decision.detail)
    return { result: 'done' }
  }

  const verb = w.kind === 'delete' ? 'delete' : w.kind === 'create' ? 'create' : 'patch'
  if (ctx.dryRun) {
    metrics.writes.inc({ action: w.kind, dry_run: 'true' })
    ctx.print(`dry-run: would ${w.kind} HorizontalPodAutoscaler ${ref}${w.kind === 'delete' ? ` (${w.why})` : w.kind === 'update' ? ` (${w.fields.join('; ')})` : ''}`)
    if (w.kind !== 'delete') ctx.print(`  ${JSON.stringify(w.manifest)}`)
    return { result: 'done' }
  }
  if (!ctx.canWrite()) return { result: 'not-leader' }
  const what = `${verb} horizontalpodautoscalers`
  try {
    if (w.kind === 'create') await ctx.kube.createHpa(w.manifest)
    else if (w.kind === 'update') await ctx.kube.applyHpa(w.manifest)
    else await ctx.kube.deleteHpa(namespace, name, { uid: w.uid, resourceVersion: w.resourceVersion })
  } catch (err) {
    const status = apiStatus(err)
    if (status === 403) {
      ctx.forbidden.failed(what, err)
      const message = `the apiserver refused to ${verb} HorizontalPodAutoscaler ${ref} (403 Forbidden: ${apiMessage(err)}); grant the applier's ServiceAccount ${verb} on horizontalpodautoscalers.autoscaling`
      log.error(message)
      if (ctx.owner !== undefined) await ctx.events.record(ctx.owner, { type: 'Warning', reason: REASONS.forbidden, message })
      metrics.errors.inc({ reason: 'forbidden' })
      return { result: 'retry', error: message }
    }
    if (status === 400 || status === 422) {
      // The apiserver refuses the manifest itself: retrying the same spec cannot help.
      metrics.errors.inc({ reason: 'rejected' })
      const message = `the apiserver rejected HorizontalPodAutoscaler ${ref} rendered from the spec: ${apiMessage(err)}`
      log.warn({ status }, message)
      if (ctx.owner !== undefined) await ctx.events.record(ctx.owner, { type: 'Warning', reason: REASONS.rejected, message })
      return { result: 'done' }
    }
    // 409 on create: an HPA of that name appeared (the operator's?); the HPA watch will show it, decide again.
    metrics.errors.inc({ reason: 'api' })
    return { result: 'retry', error: `${verb} HorizontalPodAutoscaler ${ref}: ${apiMessage(err)}` }
  }
  ctx.forbidden.succeeded(what)
  metrics.writes.inc({ action: w.kind, dry_run: 'false' })
  const done: Finding = w.kind === 'create'
    ? { type: 'Normal', reason: REASONS.created, message: `HorizontalPodAutoscaler ${name} created from the NIMService's spec` }
    : w.kind === 'update'
      ? { type: 'Normal', reason: REASONS.updated, message: `HorizontalPodAutoscaler ${name} ${w.adopt ? 'adopted' : 'updated'} from the NIMService's spec${w.fields.length > 0 ? `: ${w.fields.join('; ')}` : ''}` }
      : { type: 'Normal', reason: REASONS.deleted, message: `HorizontalPodAutoscaler ${name} deleted: ${w.why}` }
  log.info({ action: w.kind }, done.message)
  if (ctx.owner !== undefined && !(w.kind === 'delete' && w.handover)) await ctx.events.record(ctx.owner, done)
  return { result: 'done' }
}
