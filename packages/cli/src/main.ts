/**
 * The `tollgate` command: argument parsing (node's `util.parseArgs`) and dispatch.
 * `main` never exits the process; it returns the exit code, so tests can call it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { open, readFile, rm } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { type CompiledPolicy, parsePolicy, TollgateError } from '@tollgate/core'
import { explain } from './explain/explain.js'
import { formatExplanation } from './explain/format.js'
import type { ExplainInput } from './explain/types.js'
import { printable, time } from './format.js'
import { formatLint, lintJson } from './lint/format.js'
import { lintPolicy } from './lint/lint.js'
import { simulateFile } from './simulate/file.js'
import { renderReport } from './simulate/report.js'
import { formatSummary } from './simulate/summary.js'
import { TrafficError } from './simulate/traffic.js'
import { parseTime, timeError } from './time.js'

/** Exit codes of the `tollgate` command. */
export const EXIT = {
  ok: 0,
  /** The policy or the input has errors. */
  error: 1,
  /** `lint --strict` found warnings. */
  warnings: 2,
  /** The command line is wrong (BSD `EX_USAGE`). */
  usage: 64,
} as const

/** Where the command writes. */
export interface Io {
  stdout(text: string): void
  stderr(text: string): void
}

/** `io` with every text made {@link printable}: no output can carry a control character. */
const terminalSafe = (io: Io): Io => ({
  stdout: (text) => io.stdout(printable(text)),
  stderr: (text) => io.stderr(printable(text)),
})

const processIo: Io = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
}

export const USAGE = `Usage: tollgate <command> [options]

Commands:
  lint <policy>                     check a policy (YAML or JSON): errors with paths, warnings for smells
      --json                        print the findings as JSON
      --strict                      exit 2 when there are warnings
  simulate <policy> <traffic.jsonl> replay traffic ("-" for stdin) on a virtual clock; print a summary
      --report <out.html>           also write a self-contained HTML report with charts
      --top <n>                     partitions per rule in spend tables and charts (default 5)
      --bucket <duration>           chart sampling bucket, e.g. 1m, 15m (default 5m)
      --skip-invalid                count bad traffic lines as failed instead of stopping
      --workers <n|auto>            threads to shard the replay by tenant (default auto, 1 to turn off)
      --json                        print the summary as JSON
  explain <policy> --request <json> which rules apply to a request, in order, and what each decides
      --at <time>                   the request's time: ISO 8601 (UTC without an offset) or ms (default now)
      --json                        print the explanation as JSON

Exit codes: 0 ok, 1 errors in the policy or input, 2 warnings with lint --strict, 64 bad command line.`

class UsageError extends Error {}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    return String(pkg.version)
  } catch {
    return 'unknown'
  }
}

/** Load and compile a policy file, printing its errors; `null` when it is invalid. */
async function loadPolicy(path: string, io: Io): Promise<CompiledPolicy | null> {
  const text = await readFile(path, 'utf8')
  try {
    return parsePolicy(text)
  } catch (error) {
    if (!TollgateError.isInstance(error) || error.code !== 'invalid_policy') throw error
    io.stderr(formatLint(lintPolicy(text), path))
    return null
  }
}

const positionals = (args: string[], names: string[]) => {
  if (args.length !== names.length)
    throw new UsageError(`expected ${names.map((n) => `<${n}>`).join(' ')}, got ${args.length} argument(s)`)
  return args
}

async function lintCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals: rest } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, strict: { type: 'boolean' } },
  })
  const [file] = positionals(rest, ['policy'])
  const result = lintPolicy(await readFile(file!, 'utf8'))
  // JSON is for a program to read: on stdout whatever the result (the exit code says it)
  if (values.json) io.stdout(lintJson(result, file!))
  else if (result.ok) io.stdout(formatLint(result, file!))
  else io.stderr(formatLint(result, file!))
  if (!result.ok) return EXIT.error
  return values.strict && result.warnings.length > 0 ? EXIT.warnings : EXIT.ok
}

async function simulateCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals: rest } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      report: { type: 'string' },
      top: { type: 'string' },
      bucket: { type: 'string' },
      'skip-invalid': { type: 'boolean' },
      workers: { type: 'string' },
      json: { type: 'boolean' },
    },
  })
  const [policyFile, trafficFile] = positionals(rest, ['policy', 'traffic.jsonl'])
  const top = values.top === undefined ? 5 : Number(values.top)
  if (!Number.isInteger(top) || top < 1) throw new UsageError('--top takes a whole number ≥ 1')
  const bucketMs = values.bucket === undefined ? undefined : parseDurationFlag(values.bucket)
  const workers = values.workers === undefined || values.workers === 'auto' ? 'auto' : Number(values.workers)
  if (workers !== 'auto' && !(Number.isInteger(workers) && workers >= 1))
    throw new UsageError('--workers takes a whole number ≥ 1 or "auto"')
  const policy = await loadPolicy(policyFile!, io)
  if (!policy) return EXIT.error
  // The report's file is opened before the replay, which can take minutes: a path that cannot be
  // written (a missing directory, a directory) fails at once, not after the run. Opened to append,
  // so that a run that fails leaves an earlier report as it was (and removes a file it made).
  const made = values.report !== undefined && !existsSync(values.report)
  const report = values.report === undefined ? undefined : await open(values.report, 'a')
  let result: Awaited<ReturnType<typeof simulateFile>>
  try {
    result = await simulateFile(policy, trafficFile!, {
      top,
      bucketMs,
      series: report !== undefined,
      skipInvalid: values['skip-invalid'] ?? false,
      workers,
    })
  } catch (error) {
    await report?.close()
    if (made) await rm(values.report!, { force: true })
    if (!(error instanceof TrafficError)) throw error
    io.stderr(`${trafficFile}: ${error.message} (use --skip-invalid to count such lines as failed)`)
    return EXIT.error
  }
  io.stdout(values.json ? JSON.stringify(result.summary, null, 2) : formatSummary(result.summary))
  const { from } = result.summary
  // epoch seconds (2001 to 2286) read as milliseconds land in the first months of 1970
  if (from !== null && from >= 1e9 && from < 1e10)
    io.stderr(
      `tollgate simulate: the traffic starts at ${time(from)}: are its times in seconds? A number is read as milliseconds since the epoch (multiply by 1000, or write ISO times).`,
    )
  if (report) {
    try {
      await report.truncate(0)
      await report.writeFile(renderReport({ ...result, title: `${policyFile} × ${trafficFile}` }))
    } finally {
      await report.close()
    }
    if (!values.json) io.stdout(`\nReport: ${values.report}`)
  }
  return EXIT.ok
}

function parseDurationFlag(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text)
  const unit = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[match?.[2] ?? 'ms']!
  const ms = match ? Number(match[1]) * unit : Number.NaN
  if (!(ms > 0)) throw new UsageError(`--bucket takes a duration such as 1m or 15m, got "${text}"`)
  return ms
}

async function explainCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals: rest } = parseArgs({
    args,
    allowPositionals: true,
    options: { request: { type: 'string' }, at: { type: 'string' }, json: { type: 'boolean' } },
  })
  const [policyFile] = positionals(rest, ['policy'])
  if (values.request === undefined)
    throw new UsageError('explain needs --request \'{"subject": {...}, ...}\'')
  let request: ExplainInput
  try {
    request = JSON.parse(values.request)
  } catch (error) {
    throw new UsageError(`--request is not JSON: ${(error as Error).message}`)
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request))
    throw new UsageError(
      '--request needs a JSON object with a "subject", e.g. {"subject":{"user":"u1"},"model":"gpt-4o"}',
    )
  const time = values.at === undefined ? { ok: true as const, at: Date.now() } : parseTime(values.at)
  if (!time.ok) throw new UsageError(timeError('--at', time.reason))
  const { at } = time
  const policy = await loadPolicy(policyFile!, io)
  if (!policy) return EXIT.error
  const explanation = await explain(policy, request, { at })
  io.stdout(
    values.json ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation, policy.currency),
  )
  // the engine refused to evaluate the request (a subject that is no object, a bad id, amount or
  // attribute, a partition dimension it lacks): an error in the input, said on stderr too
  const { decision } = explanation
  if (!('error' in decision)) return EXIT.ok
  io.stderr(
    `tollgate explain: the engine refuses to evaluate the request: ${decision.error}: ${decision.message}`,
  )
  return EXIT.error
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  lint: lintCommand,
  simulate: simulateCommand,
  explain: explainCommand,
}

/**
 * Run the `tollgate` command with `argv` (without the node and script paths).
 *
 * @example
 * process.exitCode = await main(['lint', 'policy.yaml', '--strict'])
 * @returns the exit code: see {@link EXIT}
 */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  io = terminalSafe(io)
  const [command, ...args] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.stdout(USAGE)
    return command === undefined ? EXIT.usage : EXIT.ok
  }
  if (command === '--version' || command === '-v') {
    io.stdout(version())
    return EXIT.ok
  }
  const run = COMMANDS[command]
  // `tollgate lint --help`: the usage, before the command's own parsing calls it an unknown option
  const options = args.includes('--') ? args.slice(0, args.indexOf('--')) : args
  if (run && options.some((arg) => arg === '--help' || arg === '-h')) {
    io.stdout(USAGE)
    return EXIT.ok
  }
  if (!run) {
    io.stderr(`tollgate: unknown command "${command}"\n\n${USAGE}`)
    return EXIT.usage
  }
  try {
    return await run(args, io)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (error instanceof UsageError || code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`tollgate ${command}: ${(error as Error).message}\n\n${USAGE}`)
      return EXIT.usage
    }
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      io.stderr(`tollgate ${command}: ${(error as Error).message}`)
      return EXIT.error
    }
    throw error
  }
}
