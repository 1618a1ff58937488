// Clients for the end-to-end suite: kubectl as users run it, and raw API requests for exact bodies.
import { spawn, spawnSync } from 'node:child_process'
import { request } from 'node:https'
import { KubeConfig } from '@kubernetes/client-node'
import { freePort } from './ports.js'

export { freePort }

export interface KubectlResult { status: number, stdout: string, stderr: string, output: string }

export function kubectl (kubeconfig: string, args: string[], input?: string): KubectlResult {
  const r = spawnSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '', output: `${r.stdout ?? ''}${r.stderr ?? ''}` }
}

export function kubectlOk (kubeconfig: string, args: string[], input?: string): string {
  const r = kubectl(kubeconfig, args, input)
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.status}): ${r.output}`)
  return r.stdout
}

export interface ApiReply { status: number, body: any } // eslint-disable-line @typescript-eslint/no-explicit-any

/** A raw request to the apiserver with the kubeconfig's credentials: the body goes out byte for byte. */
export async function apiRequest (kubeconfig: string, method: string, path: string, body?: unknown): Promise<ApiReply> {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const server = kc.getCurrentCluster()?.server ?? ''
  const opts: import('node:https').RequestOptions = { method, headers: { 'content-type': 'application/json', accept: 'application/json' } }
  await kc.applyToHTTPSOptions(opts)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return await new Promise((resolve, reject) => {
    const req = request(new URL(path, server), opts, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        let parsed: unknown = text
        try { parsed = JSON.parse(text) } catch { /* keep text */ }
        resolve({ status: res.statusCode ?? 0, body: parsed })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

export async function waitFor<T> (what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) { last = err }
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`)
}

export interface WebhookProcess { port: number, metricsPort: number, stop (): Promise<void>, logs (): string }

/**
 * Runs the real `nim-admission serve` (the built CLI) on loopback and waits until /readyz answers. A port
 * picked by freePort() can be taken by another process before serve binds it: with no port given, a
 * start that fails with EADDRINUSE is retried on new ports.
 */
export async function startWebhook (root: string, certDir: string, port?: number): Promise<WebhookProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWebhookOnce(root, certDir, port ?? await freePort())
    } catch (err) {
      if (port !== undefined || attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err
    }
  }
}

async function startWebhookOnce (root: string, certDir: string, p: number): Promise<WebhookProcess> {
  const metricsPort = await freePort()
  const child = spawn(process.execPath, [`${root}/dist/src/cli/main.js`, 'serve', '--host', '127.0.0.1', '--port', String(p),
    '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--cert-dir', certDir, '--shutdown-delay', '0s'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let logs = ''
  child.stdout.on('data', (c: Buffer) => { logs = (logs + c.toString()).slice(-200_000) })
  child.stderr.on('data', (c: Buffer) => { logs = (logs + c.toString()).slice(-200_000) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  process.once('exit', () => child.kill('SIGKILL'))
  // 60 s: a cold node start on a loaded 2-core machine can take several seconds.
  await waitFor(`nim-admission serve on :${p}`, async () => {
    if (child.exitCode !== null) throw new Error(`serve exited: ${logs}`)
    const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined)
    return res?.status === 200 ? true : undefined
  }, 60_000).catch(async (err: Error) => {
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
    throw new Error(`${err.message}; logs: ${logs}`)
  })
  return {
    port: p,
    metricsPort,
    logs: () => logs,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    }
  }
}

export interface WebhookConfigOptions {
  /** Port of `serve` on 127.0.0.1 (never a Service reference: it would dial a ClusterIP). */
  port: number
  /** Base64 PEM the apiserver trusts for that server. */
  caBundle: string
  /** Name of both configurations; default nim-admission. */
  name?: string
  failurePolicy?: 'Fail' | 'Ignore'
  timeoutSeconds?: number
  namespaceSelector?: Record<string, unknown>
}

/** The mutating and validating configurations that send NIMService CREATE and UPDATE to `serve`. */
export function webhookConfigurations (o: WebhookConfigOptions): Array<Record<string, unknown>> {
  const name = o.name ?? 'nim-admission'
  const entry = (path: string): Record<string, unknown> => ({
    clientConfig: { url: `https://127.0.0.1:${o.port}${path}`, caBundle: o.caBundle },
    rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
    ...(o.namespaceSelector !== undefined ? { namespaceSelector: o.namespaceSelector } : {}),
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    failurePolicy: o.failurePolicy ?? 'Fail',
    timeoutSeconds: o.timeoutSeconds ?? 10
  })
  return [
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name }, webhooks: [{ name: 'mutate.nim-admission.io', reinvocationPolicy: 'IfNeeded', ...entry('/mutate') }] },
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name }, webhooks: [{ name: 'validate.nim-admission.io', ...entry('/validate') }] }
  ]
}
