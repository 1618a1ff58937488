// Regenerates schemas/nimservice-spec.schema.json from the vendored upstream CRD.
//   npx tsx scripts/generate-schema.ts
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { specSchemaFromCrd } from '../src/nimservice/schema-source.js'

const root = new URL('..', import.meta.url)
const crd = parse(readFileSync(new URL('schemas/upstream/apps.nvidia.com_nimservices.yaml', root), 'utf8'))
const out = fileURLToPath(new URL('schemas/nimservice-spec.schema.json', root))
writeFileSync(out, JSON.stringify(specSchemaFromCrd(crd), null, 2) + '\n')
console.log(`wrote ${out}`)
