// Text from the input (keys, values, file names) on a terminal or in a CI log: control characters
// would start a new line (a forged finding), move the cursor or clear the screen, and a line that
// starts with `::` is a GitHub Actions workflow command. Each is written as a visible escape instead.

// C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides that can
// make a line read differently from what it says (Trojan Source).
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** A user-derived string, safe to print on one line of a terminal. */
export function escapeText (text: string): string {
  return text.replace(UNSAFE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** A whole output line: no workflow command can start it (`::error ...` from a file named so). */
export function safeLine (line: string): string {
  return line.startsWith('::') ? `./${line}` : line
}
