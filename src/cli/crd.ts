// What the offline commands know of the NIMService CRD, from the files the package ships: the
// structural schema whose defaults the apiserver applies before anything checks an object, and the
// versions it serves (a test holds both to the vendored CRD, schemas/upstream/).
import { SCHEMA_TEXT } from '../nimservice/schema-split.js'
import type { StructuralSchema } from '../nimservice/crd-defaults.js'

export const GROUP = 'apps.nvidia.com'
export const KIND = 'NIMService'
/** spec.versions[].name where served: true in schemas/upstream/apps.nvidia.com_nimservices.yaml. */
export const SERVED_VERSIONS: readonly string[] = ['v1alpha1']

let schema: StructuralSchema | undefined

/**
 * The object's schema for defaulting: `spec` as generated from the CRD (schemas/, JSON: the CRD's
 * YAML takes seconds to parse); nothing else in a NIMService has a default.
 */
export function nimServiceSchema (): StructuralSchema {
  schema ??= { type: 'object', properties: { spec: JSON.parse(SCHEMA_TEXT) as StructuralSchema } }
  return schema
}
