// `certs inject`: put the CA bundle into caBundle of every webhook entry of the named Validating and
// Mutating WebhookConfigurations. The new bundle is the old one plus the given CAs, expired ones dropped,
// each once: during a CA rotation the apiserver trusts the old and the new CA, so no call fails between
// the injection and the moment the webhook serves a certificate from the new CA.
import type { V1MutatingWebhookConfiguration, V1ValidatingWebhookConfiguration } from '@kubernetes/client-node'

import { mergeCaBundle, type BundleCert } from './bundle.js'
import { CertError } from './errors.js'
import { httpStatus, kubeFailure, type WebhookApi } from './kube.js'

export type WebhookKind = 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration'
type AnyConfiguration = V1ValidatingWebhookConfiguration | V1MutatingWebhookConfiguration

export interface InjectOptions {
  api: WebhookApi
  /** Names of webhook configurations; each must exist as a Validating or Mutating one (or both). */
  webhooks: readonly string[]
  /** PEM CA bundle to add (ca.crt). */
  caBundle: string
  now?: Date
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

/** The object with every entry's caBundle merged; `changed` when any entry differs. */
function withBundle (object: AnyConfiguration, caBundle: string, now: Date): { body: AnyConfiguration; result: Omit<InjectResult, 'kind' | 'name'> } {
  let changed = false
  let added = 0
  let expired = 0
  let bundle: BundleCert[] = []
  const webhooks = (object.webhooks ?? []).map((entry, i) => {
    const merged = mergeCaBundle(unb64(entry.clientConfig?.caBundle), caBundle, { now })
    if (i === 0) bundle = merged.certs
    added += merged.added.length
    expired += merged.expired.length
    if (!merged.changed) return entry
    changed = true
    return { ...entry, clientConfig: { ...entry.clientConfig, caBundle: b64(merged.pem) } }
  })
  return { body: { ...object, webhooks } as AnyConfiguration, result: { webhooks: webhooks.length, changed, bundle, added, expired } }
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
  const results: InjectResult[] = []
  for (const item of found) {
    let object = item.object
    for (let attempt = 1; ; attempt++) {
      const { body, result } = withBundle(object, opts.caBundle, now)
      if (result.webhooks === 0) {
        throw new CertError('NIMCERT_WEBHOOK_NOT_FOUND', `${item.kind} ${item.name} has no webhook entries to inject into; check the manifest`, { subject: item.name })
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
