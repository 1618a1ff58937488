// The slice of the Kubernetes API the certificate commands use, so tests can pass a fake, and the one
// place that turns API failures into coded, one-line errors.
import type { AdmissionregistrationV1Api, CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node'

import { CertError, reason } from './errors.js'

export type SecretApi = Pick<CoreV1Api, 'readNamespacedSecret' | 'createNamespacedSecret' | 'replaceNamespacedSecret'>
export type WebhookApi = Pick<AdmissionregistrationV1Api,
'readValidatingWebhookConfiguration' | 'replaceValidatingWebhookConfiguration' |
'readMutatingWebhookConfiguration' | 'replaceMutatingWebhookConfiguration' |
'deleteValidatingWebhookConfiguration' | 'deleteMutatingWebhookConfiguration'>

export type EndpointSliceApi = Pick<DiscoveryV1Api, 'listNamespacedEndpointSlice'>

export interface KubeClients {
  core: SecretApi
  admission: WebhookApi
  discovery: EndpointSliceApi
  /** The namespace of the kubeconfig's current context ('default' when it names none). */
  namespace: string
}

/** Clients from a kubeconfig file, or from the default chain (KUBECONFIG, ~/.kube/config, in-cluster). */
export async function kubeClients (kubeconfig?: string): Promise<KubeClients> {
  const k8s = await import('@kubernetes/client-node')
  const config = new k8s.KubeConfig()
  try {
    if (kubeconfig !== undefined) config.loadFromFile(kubeconfig)
    else config.loadFromDefault()
  } catch (err) {
    throw new CertError('NIMCERT_KUBECONFIG', `cannot load kubeconfig ${kubeconfig ?? '(default: $KUBECONFIG, ~/.kube/config or in-cluster)'} (${reason(err)}); pass --kubeconfig PATH`, { cause: err })
  }
  if (config.getCurrentCluster() === null) {
    throw new CertError('NIMCERT_KUBECONFIG', `kubeconfig ${kubeconfig ?? '(default)'} has no current cluster; pass --kubeconfig PATH or set a current-context`)
  }
  const context = config.getContextObject(config.getCurrentContext())
  return {
    core: config.makeApiClient(k8s.CoreV1Api),
    admission: config.makeApiClient(k8s.AdmissionregistrationV1Api),
    discovery: config.makeApiClient(k8s.DiscoveryV1Api),
    namespace: context?.namespace ?? 'default'
  }
}

/** The HTTP status of a client-node ApiException, if that is what `err` is. */
export function httpStatus (err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'number' ? code : undefined
}

function statusMessage (err: unknown): string {
  const body = (err as { body?: unknown }).body
  let parsed: unknown = body
  if (typeof body === 'string') {
    try { parsed = JSON.parse(body) } catch { return body.slice(0, 200) }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message
  return typeof message === 'string' ? message : ''
}

/** A coded one-line error for a failed API call; `what` says which call (`read Secret ns/name`). */
export function kubeFailure (err: unknown, what: string): CertError {
  if (err instanceof CertError) return err
  const status = httpStatus(err)
  if (status === undefined) {
    return new CertError('NIMCERT_KUBE_API', `${what}: ${reason(err)}; check that the apiserver in the kubeconfig is reachable`, { subject: what, cause: err })
  }
  const detail = statusMessage(err)
  const hint = status === 401 ? 'check the kubeconfig credentials'
    : status === 403 ? 'grant this user the verb on the resource (RBAC)'
      : status === 409 ? 'the object changed meanwhile; run the command again'
        : 'see the apiserver message'
  return new CertError(status === 409 ? 'NIMCERT_CONFLICT' : 'NIMCERT_KUBE_API', `${what}: HTTP ${status}${detail === '' ? '' : `: ${detail}`}; ${hint}`, { subject: what, cause: err })
}

/** Whether the Service has at least one ready endpoint: something would answer the apiserver's call. */
export async function serviceHasReadyEndpoint (api: EndpointSliceApi, namespace: string, name: string): Promise<boolean> {
  try {
    const slices = await api.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${name}` })
    return slices.items.some((slice) => (slice.endpoints ?? []).some((e) => e.conditions?.ready !== false))
  } catch (err) {
    throw kubeFailure(err, `list EndpointSlices of Service ${namespace}/${name}`)
  }
}
