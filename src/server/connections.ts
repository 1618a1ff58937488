// Connection-level bounds of the HTTPS port: the TLS parameters (one place, used at start and on every
// reload, since setSecureContext replaces the whole context), and a cap per source address, so that
// one client cannot hold every slot of `maxConnections` with silent sockets.
import type { Server } from 'node:net'
import type { SecureContextOptions } from 'node:tls'

/**
 * Forward secrecy and AEAD only. TLS 1.3's suites all are; for TLS 1.2, ECDHE with AES-GCM or
 * ChaCha20-Poly1305: what Go's client (the apiserver) offers first, without RSA key exchange or CBC.
 * TLS 1.3 suites must be listed too: given only 1.2 names, Node turns TLS 1.3 off.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305'
].join(':')

/** The secure context of the webhook port, for the server's creation and for every reload alike. */
export function secureContextOptions (pair: { cert: string, key: string, clientCa?: string }): SecureContextOptions {
  return {
    cert: pair.cert,
    key: pair.key,
    minVersion: 'TLSv1.2',
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    ...(pair.clientCa !== undefined ? { ca: pair.clientCa } : {})
  }
}

/**
 * Closes a new connection at once when its source address already holds `max`. Runs before the TLS
 * handshake, so a refused socket costs nothing. Returns the live count per address (for tests).
 */
export function limitConnectionsPerIp (server: Server, max: number, onRefused: (address: string) => void): Map<string, number> {
  const open = new Map<string, number>()
  server.prependListener('connection', (socket: import('node:net').Socket) => {
    const address = socket.remoteAddress ?? ''
    const n = open.get(address) ?? 0
    if (n >= max) {
      onRefused(address)
      socket.destroy()
      return
    }
    open.set(address, n + 1)
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1
      if (left <= 0) open.delete(address)
      else open.set(address, left)
    })
  })
  return open
}

/**
 * Closes a TLS connection that sends no request within `ms` of its handshake. Node's headersTimeout and
 * requestTimeout start with a request's first byte, so a client that connects, shakes hands and stays
 * silent would otherwise hold its slot until the process exits. Cleared once the first request arrives
 * (from then on Node's request and keep-alive timeouts apply).
 */
export function closeSilentConnections (server: Server, ms: number, onClosed: () => void): void {
  const waiting = new WeakSet<object>()
  server.on('secureConnection', (socket: import('node:tls').TLSSocket) => {
    waiting.add(socket)
    socket.setTimeout(ms)
    socket.once('timeout', () => { if (waiting.has(socket)) onClosed() })
  })
  server.on('request', (req: import('node:http').IncomingMessage) => {
    const socket = req.socket
    if (!waiting.has(socket)) return
    waiting.delete(socket)
    socket.setTimeout(0)
  })
}
