// Certificates without cert-manager: generation, rotation state, key pair checks, caBundle injection.
export { CertError, certErrorCodes, isCertError, type CertErrorCode } from './errors.js'
export { certificateExpiry, describeRemaining, parseDuration, secondsUntil, DAY_MS } from './expiry.js'
export { commonName, issuedBy, notAfter, notBefore, parseCertificate, splitPemCertificates } from './pem.js'
export {
  createCa, generateCertificates, generateDefaults, issueServingCert, loadSigningCa, localNames, randomSerialHex,
  requestedNames, serviceDnsNames,
  type GenerateOptions, type GeneratedCertificates, type PemPair, type SigningCa
} from './generate.js'
export { loadKeyPair, readPemFile, verifyKeyPair, type KeyPair, type VerifyOptions } from './pair.js'
export { describeBundle, mergeCaBundle, parseBundle, requireUsableBundle, type BundleCert, type BundleMerge } from './bundle.js'
export { defaultCaRenewBeforeMs, defaultRenewBeforeMs, planRotation, type CertState, type RotationOptions, type RotationPlan } from './rotation.js'
export { certFileNames, certPaths, readCertDir, writeCertDir, writeFileAtomic, type CertPaths } from './files.js'
export { ensureServingCerts, type EnsureOptions, type EnsureResult } from './ensure.js'
export { readCaBundleFromSecret, readSecretState, writeSecretState, type SecretRef, type SecretStore } from './secret.js'
export { deleteWebhookConfigurations, failurePolicies, injectCaBundle, type DeleteResult, type FailurePolicy, type InjectOptions, type InjectResult, type WebhookKind } from './inject.js'
export { kubeClients, kubeFailure, serviceHasReadyEndpoint, type EndpointSliceApi, type KubeClients, type SecretApi, type WebhookApi } from './kube.js'
