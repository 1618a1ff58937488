// The baseline the benchmark compares against: fastify over HTTPS with the same certificate, parsing the
// body and answering `allowed: true`, nothing else. Usage: bare-server.ts <port> <cert-dir>; prints one
// JSON line {"listening":port} once it accepts connections.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'

const [portArg, certDir] = process.argv.slice(2)
if (portArg === undefined || certDir === undefined) throw new Error('usage: bare-server.ts <port> <cert-dir>')

const app = Fastify({
  https: { cert: readFileSync(join(certDir, 'tls.crt')), key: readFileSync(join(certDir, 'tls.key')), minVersion: 'TLSv1.2' },
  bodyLimit: 10 * 1024 * 1024,
  keepAliveTimeout: 95_000
})

const answer = async (req: { body: unknown }): Promise<unknown> => {
  const body = req.body as { apiVersion?: string, kind?: string, request?: { uid?: string } }
  return { apiVersion: body.apiVersion, kind: body.kind, response: { uid: body.request?.uid, allowed: true } }
}
app.post('/validate', answer)
app.post('/mutate', answer)

await app.listen({ host: '127.0.0.1', port: Number(portArg) })
process.stdout.write(`${JSON.stringify({ listening: Number(portArg) })}\n`)
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
