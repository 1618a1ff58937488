// Builders for NIMService objects and AdmissionReviews shaped exactly as the apiserver sends them.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'

type Json = Record<string, unknown>

export function nim (spec: Json = {}, name = 'llm', namespace = 'nim'): Json {
  return {
    apiVersion: 'apps.nvidia.com/v1alpha1',
    kind: 'NIMService',
    metadata: { name, namespace },
    spec: { image: { repository: 'nvcr.io/nim/meta/llama', tag: '1.0' }, authSecret: 'ngc', ...spec }
  }
}

/** A NIMService with autoscaling on and the given HPA spec (a sane one by default). */
export function autoscaled (hpa: Json = { minReplicas: 2, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] }, extra: Json = {}): Json {
  return nim({ resources: { requests: { cpu: '2', memory: '8Gi' } }, scale: { enabled: true, hpa }, ...extra })
}

export interface ReviewOptions {
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT'
  oldObject?: Json | null
  dryRun?: boolean
  subResource?: string
  apiVersion?: string
  kind?: { group: string, version: string, kind: string }
}

/** An AdmissionReview as kube-apiserver posts it (admission.k8s.io/v1). */
export function review (object: Json | null, opts: ReviewOptions = {}): Json {
  const meta = (object?.metadata ?? (opts.oldObject as Json | undefined)?.metadata ?? {}) as Json
  const kind = opts.kind ?? { group: 'apps.nvidia.com', version: 'v1alpha1', kind: 'NIMService' }
  return {
    apiVersion: opts.apiVersion ?? 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind,
      resource: { group: kind.group, version: kind.version, resource: 'nimservices' },
      requestKind: kind,
      requestResource: { group: kind.group, version: kind.version, resource: 'nimservices' },
      ...(opts.subResource !== undefined ? { subResource: opts.subResource } : {}),
      name: meta.name,
      namespace: meta.namespace,
      operation: opts.operation ?? 'CREATE',
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object,
      oldObject: opts.oldObject ?? null,
      dryRun: opts.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: opts.operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions', fieldManager: 'kubectl-client-side-apply', fieldValidation: 'Strict' }
    }
  }
}

/** NIMService documents of a YAML file. */
export function nimServicesIn (path: string): Json[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as Json).filter((o) => o?.kind === 'NIMService')
}
