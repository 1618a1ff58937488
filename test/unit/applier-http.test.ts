// The applier's HTTP to the apiserver, against a small fake apiserver on loopback: list pages with
// limit/continue, watches with timeoutSeconds and bookmarks, a 410 in the stream, and Status errors.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { KubeConfig } from '@kubernetes/client-node'
import { ApiError, kubeHttp } from '../../src/applier/http.js'
import { Reflector, kubeSource } from '../../src/applier/reflector.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

async function fakeApiserver (handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void): Promise<{ kc: KubeConfig, close: () => Promise<void> }> {
  const server = createServer((req, res) => handler(req, res, new URL(req.url ?? '/', 'http://x')))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x'
  })
  return { kc, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }) }
}

describe('kubeHttp and kubeSource', () => {
  it('reads a list page by page (limit, continue), sends the credentials, then watches with timeoutSeconds and bookmarks', async () => {
    const requests: string[] = []
    let watches = 0
    const items = Array.from({ length: 5 }, (_, i) => ({ metadata: { name: `n${i}`, namespace: 'a', resourceVersion: '1', managedFields: [{ manager: 'x' }] } }))
    const api = await fakeApiserver((req, res, url) => {
      requests.push(`${req.method} ${url.pathname}${url.search} ${req.headers.authorization ?? ''}`)
      if (url.searchParams.get('watch') === '1') {
        watches++
        res.writeHead(200, { 'content-type': 'application/json' })
        if (watches === 1) {
          res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'n9', namespace: 'a', resourceVersion: '11' } } })}\n`)
          res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } })}\n`)
          res.end() // the server's timeoutSeconds ran out: the client watches again from 12
        } else if (watches === 2) {
          res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old' } })}\n`)
        } else {
          res.write('\n') // keep open
        }
        return
      }
      const start = Number(url.searchParams.get('continue') ?? '0')
      const limit = Number(url.searchParams.get('limit'))
      const next = start + limit < items.length ? String(start + limit) : ''
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ kind: 'List', metadata: { resourceVersion: '10', continue: next }, items: items.slice(start, start + limit) }))
    })
    const r = new Reflector<{ key: string, rv: string }>({
      what: 'things',
      source: kubeSource(kubeHttp(api.kc), '/apis/x/v1/things', { labelSelector: 'a=b' }),
      transform: (raw) => { const m = (raw as Json).metadata; return { key: `${m.namespace}/${m.name}`, rv: m.resourceVersion } },
      keyOf: (t) => t.key,
      versionOf: (t) => t.rv,
      pageSize: 2,
      minWatchTimeoutSeconds: 60,
      logger: pino({ level: 'silent' })
    })
    r.start()
    try {
      const deadline = Date.now() + 5_000
      while (watches < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      const lists = requests.filter((l) => !l.includes('watch=1'))
      assert.deepEqual(lists.slice(0, 3).map((l) => l.split(' ')[1]), [
        '/apis/x/v1/things?labelSelector=a%3Db&limit=2',
        '/apis/x/v1/things?labelSelector=a%3Db&limit=2&continue=2',
        '/apis/x/v1/things?labelSelector=a%3Db&limit=2&continue=4'
      ])
      assert.ok(requests.every((l) => l.endsWith('Bearer secret')))
      const w = requests.filter((l) => l.includes('watch=1')).map((l) => new URL(l.split(' ')[1] ?? '', 'http://x').searchParams)
      assert.equal(w[0]?.get('resourceVersion'), '10')
      assert.equal(w[0]?.get('allowWatchBookmarks'), 'true')
      const timeout = Number(w[0]?.get('timeoutSeconds'))
      assert.ok(timeout >= 60 && timeout < 120, `timeoutSeconds ${timeout}`)
      assert.equal(w[1]?.get('resourceVersion'), '12', 'the next watch resumes from the bookmark')
      // The 410 in the second watch made it list again before the third.
      assert.equal(lists.length, 6)
      assert.ok(r.cache.has('a/n9') === false, 'the relist (which lacks n9) dropped it')
      assert.equal(r.cache.size, 5)
    } finally {
      await r.stop()
      await api.close()
    }
  })

  it('a non-2xx answer is an ApiError carrying the status and the apiserver\'s message', async () => {
    const api = await fakeApiserver((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ kind: 'Status', code: 403, message: 'horizontalpodautoscalers.autoscaling is forbidden' }))
    })
    try {
      await assert.rejects(kubeHttp(api.kc).request('POST', '/apis/autoscaling/v2/namespaces/a/horizontalpodautoscalers', { body: {} }), (err: unknown) => {
        assert.ok(err instanceof ApiError)
        assert.equal(err.code, 403)
        assert.match(err.message, /HTTP 403: horizontalpodautoscalers.autoscaling is forbidden/)
        return true
      })
    } finally {
      await api.close()
    }
  })
})
