// The e2e suites' one way to wait for CRDs: a CRD read before the apiserver wrote any condition is
// "not yet" (kubectl 1.32's `wait --for condition=established` errored on it and flaked the suite).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { crdEstablished, waitForCrdsEstablished } from '../helpers/crd.js'

const NAME = 'nimservices.apps.nvidia.com'
const fresh = { metadata: { name: NAME } } // as the apiserver returns it right after the create
const noConditions = { metadata: { name: NAME }, status: { acceptedNames: { kind: '' } } }
const namesAccepted = { metadata: { name: NAME }, status: { conditions: [{ type: 'NamesAccepted', status: 'True' }] } }
const establishedFalse = { metadata: { name: NAME }, status: { conditions: [{ type: 'Established', status: 'False', reason: 'Installing' }] } }
const established = { metadata: { name: NAME }, status: { conditions: [{ type: 'NamesAccepted', status: 'True' }, { type: 'Established', status: 'True' }] } }

/** A reader that answers each response in turn, then repeats the last one. */
function sequence (...responses: unknown[]): { read: () => unknown, calls: () => number } {
  let i = 0
  return {
    read: () => {
      const r = responses[Math.min(i, responses.length - 1)]
      i++
      if (r instanceof Error) throw r
      return r
    },
    calls: () => i
  }
}

test('crdEstablished is false without status, without conditions, and with Established not True', () => {
  assert.equal(crdEstablished(undefined), false)
  assert.equal(crdEstablished(fresh), false)
  assert.equal(crdEstablished(noConditions), false)
  assert.equal(crdEstablished({ status: { conditions: null } }), false)
  assert.equal(crdEstablished(namesAccepted), false)
  assert.equal(crdEstablished(establishedFalse), false)
  assert.equal(crdEstablished(established), true)
})

test('waits through "not found", "no conditions yet" and "Established=False" until Established=True', async () => {
  const s = sequence(undefined, fresh, noConditions, namesAccepted, establishedFalse, established)
  await waitForCrdsEstablished('unused', [NAME], { read: s.read, served: () => true, intervalMs: 1, timeoutMs: 5_000 })
  assert.equal(s.calls(), 6)
})

test('a failed read (apiserver busy) is retried, not fatal', async () => {
  const s = sequence(new Error('the server was unable to return a response in the time allotted'), established)
  await waitForCrdsEstablished('unused', [NAME], { read: s.read, served: () => true, intervalMs: 1, timeoutMs: 5_000 })
  assert.equal(s.calls(), 2)
})

test('also waits until the resource is served in discovery', async () => {
  let servedCalls = 0
  await waitForCrdsEstablished('unused', [NAME], {
    read: () => established,
    served: () => ++servedCalls >= 3,
    intervalMs: 1,
    timeoutMs: 5_000
  })
  assert.equal(servedCalls, 3)
})

test('waits for every CRD named, each on its own', async () => {
  const reads = new Map<string, ReturnType<typeof sequence>>([
    ['a.example.com', sequence(noConditions, established)],
    ['b.example.com', sequence(undefined, undefined, undefined, established)]
  ])
  await waitForCrdsEstablished('unused', [...reads.keys()], {
    read: (name) => reads.get(name)?.read(),
    served: () => true,
    intervalMs: 1,
    timeoutMs: 5_000
  })
  assert.equal(reads.get('a.example.com')?.calls(), 2, 'an established CRD is not read again')
  assert.equal(reads.get('b.example.com')?.calls(), 4)
})

test('fails after the deadline naming the CRD and the conditions it last had', async () => {
  await assert.rejects(
    waitForCrdsEstablished('unused', [NAME], { read: () => noConditions, served: () => true, intervalMs: 5, timeoutMs: 50 }),
    (err: Error) => {
      assert.match(err.message, /CRDs not established after 50 ms/)
      assert.match(err.message, /nimservices\.apps\.nvidia\.com: conditions null/)
      return true
    }
  )
})
