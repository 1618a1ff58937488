// Types at the boundary of the domain: what goes into a verdict and what comes out.

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT'

/** One reason for a denial: the field at fault, what is wrong, and the rule that says so. */
export interface Cause {
  /** Full field path as Kubernetes prints it, e.g. `spec.scale.hpa.metrics[0].resource.name`. */
  field: string
  message: string
  /** Stable rule code (see codes.ts); never reused once published. */
  code: string
}

/** A best-practice finding: allowed, but said. */
export interface Warning {
  field: string
  message: string
  code: string
}

export interface Verdict {
  allowed: boolean
  causes: Cause[]
  warnings: Warning[]
  /** On UPDATE: causes the old object already had, unchanged, so allowed (and repeated in warnings). */
  ratcheted?: Cause[]
}

export interface ReviewInput {
  operation: Operation
  object: unknown
  oldObject?: unknown
}

export type JsonObject = Record<string, unknown>
