// Coded certificate errors. Codes are published (users grep them, scripts match them): never reuse or
// rename one; retire it instead. Every message names the file or object at fault and what to do.

export const certErrorCodes = {
  NIMCERT_UNREADABLE: 'a certificate or key file cannot be read',
  NIMCERT_INVALID_CERT: 'a file holds no parseable PEM certificate',
  NIMCERT_INVALID_KEY: 'a file holds no parseable, unencrypted PEM private key',
  NIMCERT_UNSUPPORTED_KEY: 'a CA key is not RSA (node-forge signs with RSA only)',
  NIMCERT_KEY_MISMATCH: 'the private key does not belong to the certificate',
  NIMCERT_EXPIRED: 'a certificate has expired',
  NIMCERT_NOT_YET_VALID: 'a certificate is not valid yet (clock skew, or a future notBefore)',
  NIMCERT_CA_EXPIRED: 'the CA has expired',
  NIMCERT_NOT_A_CA: 'a certificate given as CA lacks basicConstraints cA=true',
  NIMCERT_BAD_OPTION: 'an option has an invalid value',
  NIMCERT_WRITE_FAILED: 'a certificate file cannot be written',
  NIMCERT_KUBECONFIG: 'the kubeconfig cannot be loaded',
  NIMCERT_KUBE_API: 'the Kubernetes API refused or failed a request',
  NIMCERT_SECRET_NOT_FOUND: 'the Secret does not exist',
  NIMCERT_SECRET_INVALID: 'the Secret lacks a key or has the wrong type',
  NIMCERT_CONFLICT: 'the object changed while it was being updated',
  NIMCERT_WEBHOOK_NOT_FOUND: 'no Validating/MutatingWebhookConfiguration has the given name',
  NIMCERT_NO_CA_BUNDLE: 'a webhook entry has no unexpired CA in caBundle, so its failurePolicy cannot be armed',
  NIMCERT_WEBHOOK_NOT_READY: 'the Service a webhook entry calls has no ready endpoint, so its failurePolicy cannot be armed'
} as const

export type CertErrorCode = keyof typeof certErrorCodes

export class CertError extends Error {
  readonly code: CertErrorCode
  /** The file or object (`Secret ns/name`) the error is about, when there is one. */
  readonly subject?: string

  constructor (code: CertErrorCode, message: string, opts: { subject?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'CertError'
    this.code = code
    if (opts.subject !== undefined) this.subject = opts.subject
  }
}

export const isCertError = (err: unknown): err is CertError => err instanceof CertError

/** The short reason of a system error (`EACCES: permission denied`), without the path Node repeats. */
export function reason (err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code
    const text = err.message.replace(/,\s*\w+\s+'[^']*'$/, '')
    return code !== undefined && !text.startsWith(code) ? `${code}: ${text}` : text
  }
  return String(err)
}
