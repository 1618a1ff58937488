// `certs inject`: put the CA bundle into caBundle of every webhook entry of the named Validating and
// Mutating WebhookConfigurations. The new bundle is the old one plus the given CAs, expired ones dropped,
// each once: during a CA rotation the apiserver trusts the old and the new CA, so no call fails between
// the injection and the moment the webhook serves a certificate from the new CA.
//
// With a failurePolicy it also arms the entries: the chart creates them with `Ignore`, so that nothing refuses
// NIMService writes before a certificate and its caBundle exist, and this sets the configured policy once they
// do. Without a CA to add it only arms, and only entries whose caBundle already holds an unexpired CA (put
// there by cert-manager's cainjector, or by hand).
import type { V1MutatingWebhookConfiguration, V1ValidatingWebhookConfiguration } from '@kubernetes/client-node'

import { mergeCaBundle, type BundleCert } from './bundle.js'
import { CertError } from './errors.js'
import { httpStatus, kubeFailure, type WebhookApi } from './kube.js'

export type WebhookKind = 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration'
export type FailurePolicy = 'Fail' | 'Ignore'
export const failurePolicies: readonly FailurePolicy[] = ['Fail', 'Ignore']
type AnyConfiguration = V1ValidatingWebhookConfiguration | V1MutatingWebhookConfiguration

export interface InjectOptions {
  api: WebhookApi
  /** Names of webhook configurations; each must exist as a Validating or Mutating one (or both). */
  webhooks: readonly string[]
  /** PEM CA bundle to add (ca.crt); undefined: add nothing, only set failurePolicy. */
  caBundle?: string
  /** Set this failurePolicy on every entry of a kind; `Fail` only once its caBundle holds an unexpired CA. */
  failurePolicy?: Partial<Record<WebhookKind, FailurePolicy>>
  now?: Date
  /**
   * Whether the Service an entry calls has a ready endpoint; when given, `Fail` is set only on entries whose Service
   * has one (a webhook that never started must not refuse writes). Entries with a `url` are not checked.
   */
  serviceReady?: (namespace: string, name: string) => Promise<boolean>
  /** Compute, do not write. */
  dryRun?: boolean
}

export interface InjectResult {
  kind: WebhookKind
  name: string
  /** Number of webhook entries in the object. */
  webhooks: number
  changed: boolean
  /** The CAs the entries trust afterwards (of the first entry; all entries end with the same set unless they trusted different CAs before). */
  bundle: BundleCert[]
  added: number
  expired: number
  /** Entries whose failurePolicy this call set (0 when none differed or none was asked for). */
  armed: number
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')
const unb64 = (text: string | undefined): string | undefined => (text === undefined ? undefined : Buffer.from(text, 'base64').toString('utf8'))

const kinds: Record<WebhookKind, { read: (api: WebhookApi, name: string) => Promise<AnyConfiguration>; replace: (api: WebhookApi, name: string, body: AnyConfiguration) => Promise<unknown> }> = {
  ValidatingWebhookConfiguration: {
    read: async (api, name) => await api.readValidatingWebhookConfiguration({ name }),
    replace: async (api, name, body) => await api.replaceValidatingWebhookConfiguration({ name, body: body as V1ValidatingWebhookConfiguration })
  },
  MutatingWebhookConfiguration: {
    read: async (api, name) => await api.readMutatingWebhookConfiguration({ name }),
    replace: async (api, name, body) => await api.replaceMutatingWebhookConfiguration({ name, body: body as V1MutatingWebhookConfiguration })
  }
}

async function readOptional (api: WebhookApi, kind: WebhookKind, name: string): Promise<AnyConfiguration | undefined> {
  try {
    return await kinds[kind].read(api, name)
  } catch (err) {
    if (httpStatus(err) === 404) return undefined
    throw kubeFailure(err, `read ${kind} ${name}`)
  }
}

/** The object with every entry's caBundle merged and failurePolicy set; `changed` when any entry differs. */
function withBundle (object: AnyConfiguration, opts: { caBundle?: string; failurePolicy?: FailurePolicy }, now: Date): { body: AnyConfiguration; result: Omit<InjectResult, 'kind' | 'name'>; unarmed: string[]; services: Array<{ namespace: string; name: string; entry: string }> } {
  let changed = false
  let added = 0
  let expired = 0
  let armed = 0
  let bundle: BundleCert[] = []
  const unarmed: string[] = []
  const services: Array<{ namespace: string; name: string; entry: string }> = []
  const webhooks = (object.webhooks ?? []).map((entry, i) => {
    const merged = mergeCaBundle(unb64(entry.clientConfig?.caBundle), opts.caBundle ?? [], { now })
    if (i === 0) bundle = merged.certs
    added += merged.added.length
    expired += merged.expired.length
    let next = entry
    if (merged.changed && opts.caBundle !== undefined) next = { ...next, clientConfig: { ...next.clientConfig, caBundle: b64(merged.pem) } }
    if (opts.failurePolicy !== undefined && entry.failurePolicy !== opts.failurePolicy) {
      // Never arm an entry the apiserver could not call: its calls would all fail, and with Fail refuse writes.
      if (merged.certs.length === 0 && opts.failurePolicy === 'Fail') unarmed.push(entry.name)
      else {
        next = { ...next, failurePolicy: opts.failurePolicy }
        armed++
        const service = entry.clientConfig?.service
        if (opts.failurePolicy === 'Fail' && service !== undefined) services.push({ namespace: service.namespace, name: service.name, entry: entry.name })
      }
    }
    if (next !== entry) changed = true
    return next
  })
  return { body: { ...object, webhooks } as AnyConfiguration, result: { webhooks: webhooks.length, changed, bundle, added, expired, armed }, unarmed, services }
}

export async function injectCaBundle (opts: InjectOptions): Promise<InjectResult[]> {
  const now = opts.now ?? new Date()
  const found: Array<{ kind: WebhookKind; name: string; object: AnyConfiguration }> = []
  const missing: string[] = []
  for (const name of new Set(opts.webhooks)) {
    let any = false
    for (const kind of Object.keys(kinds) as WebhookKind[]) {
      const object = await readOptional(opts.api, kind, name)
      if (object !== undefined) { found.push({ kind, name, object }); any = true }
    }
    if (!any) missing.push(name)
  }
  if (missing.length > 0) {
    throw new CertError('NIMCERT_WEBHOOK_NOT_FOUND', `no ValidatingWebhookConfiguration or MutatingWebhookConfiguration named ${missing.join(', ')}; apply the webhook configuration first (kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations lists them)`, { subject: missing.join(', ') })
  }
  // Every entry must be armable before anything is written, so a refusal leaves all of them as they were.
  const forKind = (kind: WebhookKind): { caBundle?: string; failurePolicy?: FailurePolicy } => ({
    ...(opts.caBundle === undefined ? {} : { caBundle: opts.caBundle }),
    ...(opts.failurePolicy?.[kind] === undefined ? {} : { failurePolicy: opts.failurePolicy[kind] })
  })
  const planned = found.map((item) => ({ item, plan: withBundle(item.object, forKind(item.kind), now) }))
  const unarmed = planned.flatMap(({ item, plan }) => plan.unarmed.map((entry) => `${item.kind} ${item.name} webhook ${entry}`))
  if (unarmed.length > 0) {
    throw new CertError('NIMCERT_NO_CA_BUNDLE', `${unarmed.join(', ')}: caBundle holds no unexpired CA, so failurePolicy Fail is not set; inject one first (--secret NAME or --ca-file PATH, or wait for cert-manager's cainjector)`, { subject: unarmed.join(', ') })
  }
  if (opts.serviceReady !== undefined) {
    const notReady: string[] = []
    const checked = new Map<string, boolean>()
    for (const { item, plan } of planned) {
      for (const s of plan.services) {
        const key = `${s.namespace}/${s.name}`
        if (!checked.has(key)) checked.set(key, await opts.serviceReady(s.namespace, s.name))
        if (checked.get(key) !== true) notReady.push(`${item.kind} ${item.name} webhook ${s.entry} (Service ${key})`)
      }
    }
    if (notReady.length > 0) {
      throw new CertError('NIMCERT_WEBHOOK_NOT_READY', `${notReady.join(', ')}: no ready endpoint, so failurePolicy Fail is not set (NIMService writes would all be refused); check the webhook pods (kubectl get pods,endpointslices -n NAMESPACE)`, { subject: notReady.join(', ') })
    }
  }
  const results: InjectResult[] = []
  for (const item of found) {
    let object = item.object
    for (let attempt = 1; ; attempt++) {
      const { body, result, unarmed } = withBundle(object, forKind(item.kind), now)
      if (result.webhooks === 0) {
        throw new CertError('NIMCERT_WEBHOOK_NOT_FOUND', `${item.kind} ${item.name} has no webhook entries to inject into; check the manifest`, { subject: item.name })
      }
      if (unarmed.length > 0) {
        throw new CertError('NIMCERT_NO_CA_BUNDLE', `${item.kind} ${item.name} webhook ${unarmed.join(', ')}: caBundle lost its CA while being armed; run the command again`, { subject: item.name })
      }
      if (result.changed && opts.dryRun !== true) {
        try {
          await kinds[item.kind].replace(opts.api, item.name, body)
        } catch (err) {
          // Someone else wrote the object between our read and write: read again and re-merge.
          if (httpStatus(err) === 409 && attempt < 3) {
            const again = await readOptional(opts.api, item.kind, item.name)
            if (again !== undefined) { object = again; continue }
          }
          throw kubeFailure(err, `update ${item.kind} ${item.name}`)
        }
      }
      results.push({ kind: item.kind, name: item.name, ...result })
      break
    }
  }
  return results
}

export interface DeleteResult { kind: WebhookKind; name: string; deleted: boolean }

/**
 * Deletes the Validating and Mutating configuration of each name; an absent one is not an error. Run before the
 * webhook's Service goes away (the chart's pre-delete hook), so no configuration is left calling nothing.
 */
export async function deleteWebhookConfigurations (api: WebhookApi, names: readonly string[]): Promise<DeleteResult[]> {
  const results: DeleteResult[] = []
  for (const name of new Set(names)) {
    for (const kind of Object.keys(kinds) as WebhookKind[]) {
      try {
        if (kind === 'ValidatingWebhookConfiguration') await api.deleteValidatingWebhookConfiguration({ name })
        else await api.deleteMutatingWebhookConfiguration({ name })
        results.push({ kind, name, deleted: true })
      } catch (err) {
        if (httpStatus(err) !== 404) throw kubeFailure(err, `delete ${kind} ${name}`)
        results.push({ kind, name, deleted: false })
      }
    }
  }
  return results
}
