// PEM text in, parsed certificates out. Parsing uses Node's own X509Certificate, so what we check is what
// Node's TLS stack (and, for the same DER, Go's apiserver) sees.
import { X509Certificate } from 'node:crypto'

import { CertError } from './errors.js'

const certBlock = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/** Every CERTIFICATE block in a PEM text, in order, normalised to end with a newline. */
export function splitPemCertificates (pem: string): string[] {
  return (pem.match(certBlock) ?? []).map((block) => `${block.trim()}\n`)
}

/** The first certificate of a PEM text (a leaf followed by its chain is fine). */
export function parseCertificate (pem: string, subject = 'certificate'): X509Certificate {
  const first = splitPemCertificates(pem)[0]
  if (first === undefined) {
    throw new CertError('NIMCERT_INVALID_CERT', `${subject}: no PEM certificate found (expected a -----BEGIN CERTIFICATE----- block)`, { subject })
  }
  try {
    return new X509Certificate(first)
  } catch (err) {
    throw new CertError('NIMCERT_INVALID_CERT', `${subject}: the PEM certificate cannot be parsed (${(err as Error).message})`, { subject, cause: err })
  }
}

export const notAfter = (cert: X509Certificate): Date => new Date(cert.validTo)
export const notBefore = (cert: X509Certificate): Date => new Date(cert.validFrom)

/** The subject's common name, for messages. */
export function commonName (cert: X509Certificate): string {
  const line = cert.subject.split('\n').find((l) => l.startsWith('CN='))
  return line === undefined ? cert.subject.replace(/\n/g, ', ') : line.slice(3)
}

/** True when `ca` signed `cert` (names chain and the signature verifies). */
export function issuedBy (cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey)
  } catch {
    return false
  }
}
