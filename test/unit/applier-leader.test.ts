// Leader election against an in-memory Lease store, on fake clocks: the monotonic one decides every
// expiry; the wall clock only stamps the Lease, so stepping it can never make two leaders.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { LeaderElector, LeaseConflictError, microTime, type LeaseRecord, type LeaseStore, type StoredLease } from '../../src/applier/leader.js'

/** A Lease in memory, with resourceVersion-style optimistic concurrency like the apiserver's. */
class MemoryLeaseStore implements LeaseStore {
  stored: { record: LeaseRecord, version: number } | undefined
  failing = false
  writes = 0
  private next = 1
  describe (): string { return 'memory lease' }
  private snapshot (): StoredLease | undefined {
    return this.stored === undefined ? undefined : { record: { ...this.stored.record }, version: String(this.stored.version) }
  }

  async get (): Promise<StoredLease | undefined> {
    if (this.failing) throw new Error('apiserver unreachable')
    return this.snapshot()
  }

  async create (record: LeaseRecord): Promise<StoredLease> {
    if (this.failing) throw new Error('apiserver unreachable')
    if (this.stored !== undefined) throw new LeaseConflictError('exists')
    this.stored = { record: { ...record }, version: this.next++ }
    this.writes++
    return this.snapshot() as StoredLease
  }

  async update (record: LeaseRecord, version: string): Promise<StoredLease> {
    if (this.failing) throw new Error('apiserver unreachable')
    if (this.stored === undefined || String(this.stored.version) !== version) throw new LeaseConflictError('changed')
    this.stored = { record: { ...record }, version: this.next++ }
    this.writes++
    return this.snapshot() as StoredLease
  }
}

class Clock {
  constructor (public t = 1_000_000) {}
  now = (): number => this.t
  advance (ms: number): void { this.t += ms }
}

const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }

describe('leader election (in-memory Lease)', () => {
  it('the first candidate creates the Lease and leads; the second stays a follower while it is renewed', async () => {
    const store = new MemoryLeaseStore()
    const clock = new Clock()
    const a = new LeaderElector({ store, identity: 'a', monotonic: clock.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', monotonic: clock.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    assert.equal(store.stored?.record.holderIdentity, 'a')
    assert.equal(store.stored?.record.leaseDurationSeconds, 15)
    for (let i = 0; i < 20; i++) {
      clock.advance(2_000)
      assert.equal(await a.tryAcquireOrRenew(), true)
      assert.equal(await b.tryAcquireOrRenew(), false)
    }
    assert.equal(store.stored?.record.holderIdentity, 'a')
    assert.equal(store.stored?.record.leaseTransitions, 0)
    assert.equal(b.leader(), 'a')
  })

  it('takes over only after the holder has not renewed for a lease duration, counting a transition', async () => {
    const store = new MemoryLeaseStore()
    const clock = new Clock()
    const a = new LeaderElector({ store, identity: 'a', monotonic: clock.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', monotonic: clock.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    assert.equal(await b.tryAcquireOrRenew(), false) // b observes the record now
    // a crashes: no more renewals. b retries every retry period.
    for (let waited = 2_000; waited < 15_000; waited += 2_000) {
      clock.advance(2_000)
      assert.equal(await b.tryAcquireOrRenew(), false, `took over after only ${waited} ms`)
    }
    clock.advance(2_000) // 16 s since b last saw the record change
    assert.equal(await b.tryAcquireOrRenew(), true)
    assert.equal(store.stored?.record.holderIdentity, 'b')
    assert.equal(store.stored?.record.leaseTransitions, 1)
  })

  it('a candidate whose clock runs ahead still waits a full lease duration from its own observation', async () => {
    const store = new MemoryLeaseStore()
    const clockA = new Clock(1_000_000)
    const clockB = new Clock(1_000_000 + 3_600_000) // an hour ahead
    const a = new LeaderElector({ store, identity: 'a', monotonic: clockA.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', monotonic: clockB.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    assert.equal(await b.tryAcquireOrRenew(), false, 'renewTime an hour in the past by b\'s clock must not count as expired')
    clockB.advance(14_000)
    assert.equal(await b.tryAcquireOrRenew(), false)
    clockB.advance(1_001)
    assert.equal(await b.tryAcquireOrRenew(), true)
  })

  it('the leader stops claiming leadership at the renew deadline, before anyone may take over', async () => {
    const store = new MemoryLeaseStore()
    const clock = new Clock()
    const a = new LeaderElector({ store, identity: 'a', monotonic: clock.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', monotonic: clock.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    ;(a as unknown as { leading: boolean }).leading = true // what the run loop sets on acquiring
    assert.equal(await b.tryAcquireOrRenew(), false)
    store.failing = true // a cannot reach the apiserver any more; b can't either, for now
    for (let t = 0; t <= 20_000; t += 500) {
      clock.advance(500)
      await a.tryAcquireOrRenew().catch(() => false)
      store.failing = false
      const bLeads = await b.tryAcquireOrRenew()
      store.failing = true
      assert.ok(!(a.isLeader() && bLeads), `both lead at +${t} ms`)
      if (bLeads) break
    }
    assert.equal(store.stored?.record.holderIdentity, 'b')
    assert.equal(a.isLeader(), false)
  })

  it('a wall-clock step (forward or back, on either replica) gives neither an early takeover nor a leader past its deadline', async () => {
    for (const step of [3_600_000, -3_600_000]) {
      const store = new MemoryLeaseStore()
      const mono = new Clock()
      const wallA = new Clock(Date.UTC(2026, 0, 1))
      const wallB = new Clock(Date.UTC(2026, 0, 1))
      const a = new LeaderElector({ store, identity: 'a', monotonic: mono.now, wallClock: wallA.now, ...timings })
      const b = new LeaderElector({ store, identity: 'b', monotonic: mono.now, wallClock: wallB.now, ...timings })
      assert.equal(await a.tryAcquireOrRenew(), true)
      ;(a as unknown as { leading: boolean }).leading = true
      assert.equal(await b.tryAcquireOrRenew(), false)
      // NTP steps both wall clocks; a keeps renewing every retry period.
      wallA.advance(step)
      wallB.advance(step)
      for (let i = 0; i < 10; i++) {
        mono.advance(2_000)
        assert.equal(await a.tryAcquireOrRenew(), true)
        assert.equal(await b.tryAcquireOrRenew(), false, `b took over a renewed Lease after a ${step} ms wall-clock step`)
        assert.ok(a.isLeader())
      }
      assert.equal(store.stored?.record.holderIdentity, 'a')
      // The Lease's timestamps do follow the wall clock: that is all it is used for.
      assert.equal(store.stored?.record.renewTime, microTime(wallA.t))
      // a stops renewing: it gives up at its renew deadline on the monotonic clock, whatever the wall clock says.
      store.failing = true
      wallA.advance(-step * 2)
      mono.advance(10_000)
      assert.equal(a.isLeader(), false)
      store.failing = false
      mono.advance(6_000)
      assert.equal(await b.tryAcquireOrRenew(), true)
    }
  })

  it('uses performance.now, not Date.now, for expiry by default', async () => {
    const store = new MemoryLeaseStore()
    const a = new LeaderElector({ store, identity: 'a', ...timings })
    const realNow = Date.now
    try {
      assert.equal(await a.tryAcquireOrRenew(), true)
      ;(a as unknown as { leading: boolean }).leading = true
      Date.now = () => realNow() + 3_600_000 // a wall-clock step forward by an hour
      assert.equal(a.isLeader(), true, 'a wall-clock step ended the leadership')
    } finally {
      Date.now = realNow
    }
  })

  it('two candidates racing for an expired Lease: exactly one wins', async () => {
    for (let round = 0; round < 20; round++) {
      const store = new MemoryLeaseStore()
      const clock = new Clock()
      store.stored = { record: { holderIdentity: 'gone', leaseDurationSeconds: 15, renewTime: microTime(0), acquireTime: microTime(0), leaseTransitions: 3 }, version: 99 }
      const a = new LeaderElector({ store, identity: 'a', monotonic: clock.now, ...timings })
      const b = new LeaderElector({ store, identity: 'b', monotonic: clock.now, ...timings })
      assert.deepEqual(await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()]), [false, false]) // both observe first
      clock.advance(15_001)
      const results = await Promise.all(round % 2 === 0 ? [a.tryAcquireOrRenew(), b.tryAcquireOrRenew()] : [b.tryAcquireOrRenew(), a.tryAcquireOrRenew()])
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(results)}`)
      assert.equal(store.stored?.record.leaseTransitions, 4)
    }
  })

  it('two candidates racing to create the Lease: exactly one wins', async () => {
    const store = new MemoryLeaseStore()
    const a = new LeaderElector({ store, identity: 'a', ...timings })
    const b = new LeaderElector({ store, identity: 'b', ...timings })
    const results = await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()])
    assert.equal(results.filter(Boolean).length, 1)
    assert.equal(store.writes, 1)
  })

  it('writes MicroTime with microseconds, as the apiserver expects', () => {
    assert.equal(microTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678)), '2025-01-02T03:04:05.678000Z')
  })

  it('rejects timings where the renew deadline is not below the lease duration', () => {
    assert.throws(() => new LeaderElector({ store: new MemoryLeaseStore(), identity: 'a', leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }), /--lease-duration/)
    assert.throws(() => new LeaderElector({ store: new MemoryLeaseStore(), identity: 'a', leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /--renew-deadline/)
  })

  it('run loop: one leader at a time; killing it hands over within lease duration + 2 retry periods; release hands over at once', async () => {
    const store = new MemoryLeaseStore()
    const fast = { leaseDurationMs: 1_000, renewDeadlineMs: 600, retryPeriodMs: 100 }
    const started: string[] = []
    const make = (id: string): LeaderElector => new LeaderElector({ store, identity: id, ...fast, onStartedLeading: () => started.push(id) })
    const a = make('a')
    const b = make('b')
    a.start()
    await new Promise((resolve) => setTimeout(resolve, 30))
    b.start()
    const both = setInterval(() => assert.ok(!(a.isLeader() && b.isLeader()), 'both lead'), 5)
    try {
      await waitFor(() => a.isLeader() || b.isLeader(), 2_000)
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.equal(started.length, 1)
      const [leader, follower] = a.isLeader() ? [a, b] : [b, a]
      const killedAt = Date.now()
      await leader.stop() // a crash: no release
      await waitFor(() => follower.isLeader(), 3_000)
      const handover = Date.now() - killedAt
      assert.ok(handover <= fast.leaseDurationMs + 2 * fast.retryPeriodMs + 100, `handover took ${handover} ms`)
      assert.ok(handover >= fast.leaseDurationMs - fast.retryPeriodMs - 50, `handover after only ${handover} ms: the lease did not hold`)
      const c = make('c')
      c.start()
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.equal(c.isLeader(), false)
      const releasedAt = Date.now()
      await follower.stop({ release: true })
      await waitFor(() => c.isLeader(), 2_000)
      assert.ok(Date.now() - releasedAt < 500, `after a release, took ${Date.now() - releasedAt} ms`)
      await c.stop({ release: true })
      assert.equal(store.stored?.record.holderIdentity, '')
    } finally {
      clearInterval(both)
      await a.stop()
      await b.stop()
    }
  })
})

async function waitFor (cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
