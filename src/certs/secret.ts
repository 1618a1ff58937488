// The Secret form of the certificate state. The serving Secret is what the webhook Pod mounts:
// type kubernetes.io/tls with tls.crt, tls.key and ca.crt. The CA's key never goes into it: it lives in a
// second, Opaque Secret (default `<name>-ca`) with ca.crt and ca.key, which only this command reads.
import type { V1Secret } from '@kubernetes/client-node'

import { CertError } from './errors.js'
import { httpStatus, kubeFailure, type SecretApi } from './kube.js'
import type { CertState } from './rotation.js'

export interface SecretRef { namespace: string; name: string }

export interface SecretStore {
  serving: SecretRef
  ca: SecretRef
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')
const unb64 = (text: string | undefined): string | undefined => (text === undefined ? undefined : Buffer.from(text, 'base64').toString('utf8'))
const show = (ref: SecretRef): string => `Secret ${ref.namespace}/${ref.name}`

/** The Secret, or undefined when it does not exist. */
export async function readSecret (api: SecretApi, ref: SecretRef): Promise<V1Secret | undefined> {
  try {
    return await api.readNamespacedSecret({ namespace: ref.namespace, name: ref.name })
  } catch (err) {
    if (httpStatus(err) === 404) return undefined
    throw kubeFailure(err, `read ${show(ref)}`)
  }
}

export async function readSecretState (api: SecretApi, store: SecretStore): Promise<{ state: CertState; serving?: V1Secret; ca?: V1Secret }> {
  const serving = await readSecret(api, store.serving)
  const ca = await readSecret(api, store.ca)
  const state: CertState = {}
  const caBundle = unb64(ca?.data?.['ca.crt']) ?? unb64(serving?.data?.['ca.crt'])
  const caKeys = unb64(ca?.data?.['ca.key'])
  const cert = unb64(serving?.data?.['tls.crt'])
  const key = unb64(serving?.data?.['tls.key'])
  if (caBundle !== undefined) state.caBundle = caBundle
  if (caKeys !== undefined) state.caKeys = caKeys
  if (cert !== undefined) state.cert = cert
  if (key !== undefined) state.key = key
  const result: { state: CertState; serving?: V1Secret; ca?: V1Secret } = { state }
  if (serving !== undefined) result.serving = serving
  if (ca !== undefined) result.ca = ca
  return result
}

const managedBy = { 'app.kubernetes.io/managed-by': 'nim-admission' }

async function upsert (api: SecretApi, ref: SecretRef, existing: V1Secret | undefined, type: string, data: Record<string, string>): Promise<void> {
  const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]))
  if (existing === undefined) {
    const body: V1Secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: ref.name, namespace: ref.namespace, labels: managedBy }, type, data: encoded }
    try {
      await api.createNamespacedSecret({ namespace: ref.namespace, body })
    } catch (err) {
      throw kubeFailure(err, `create ${show(ref)}`)
    }
    return
  }
  if ((existing.type ?? 'Opaque') !== type) {
    throw new CertError('NIMCERT_SECRET_INVALID', `${show(ref)} exists with type ${existing.type ?? 'Opaque'}, not ${type} (a Secret's type cannot change); delete it or choose another --secret name`, { subject: show(ref) })
  }
  // Replace with the resourceVersion we read: a concurrent writer makes this fail (409) instead of losing.
  const body: V1Secret = {
    ...existing,
    metadata: { ...existing.metadata, labels: { ...existing.metadata?.labels, ...managedBy } },
    data: { ...existing.data, ...encoded }
  }
  try {
    await api.replaceNamespacedSecret({ namespace: ref.namespace, name: ref.name, body })
  } catch (err) {
    throw kubeFailure(err, `update ${show(ref)}`)
  }
}

/** Writes the CA Secret first (it only adds trust), then the serving Secret the Pod mounts. */
export async function writeSecretState (api: SecretApi, store: SecretStore, next: Required<CertState>, previous: { state: CertState; serving?: V1Secret; ca?: V1Secret }): Promise<string[]> {
  const written: string[] = []
  const prev = previous.state
  if (next.caKeys !== '' && (next.caKeys !== prev.caKeys || next.caBundle !== prev.caBundle || previous.ca === undefined)) {
    await upsert(api, store.ca, previous.ca, 'Opaque', { 'ca.crt': next.caBundle, 'ca.key': next.caKeys })
    written.push(show(store.ca))
  }
  const servingCa = unb64(previous.serving?.data?.['ca.crt'])
  if (previous.serving === undefined || next.cert !== prev.cert || next.key !== prev.key || next.caBundle !== servingCa) {
    await upsert(api, store.serving, previous.serving, 'kubernetes.io/tls', { 'tls.crt': next.cert, 'tls.key': next.key, 'ca.crt': next.caBundle })
    written.push(show(store.serving))
  }
  return written
}

/** The ca.crt of an existing Secret (for `certs inject --secret`). */
export async function readCaBundleFromSecret (api: SecretApi, ref: SecretRef): Promise<string> {
  const secret = await readSecret(api, ref)
  if (secret === undefined) {
    throw new CertError('NIMCERT_SECRET_NOT_FOUND', `${show(ref)} not found; create it with \`nim-admission certs generate --secret ${ref.name} --secret-namespace ${ref.namespace}\` or check --secret/--secret-namespace`, { subject: show(ref) })
  }
  const bundle = unb64(secret.data?.['ca.crt'])
  if (bundle === undefined || bundle.trim() === '') {
    throw new CertError('NIMCERT_SECRET_INVALID', `${show(ref)} has no ca.crt key; give the Secret written by \`nim-admission certs generate --secret\`, or --ca-file`, { subject: show(ref) })
  }
  return bundle
}
