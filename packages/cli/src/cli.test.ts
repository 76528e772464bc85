/**
 * The `tollgate` executable as a child process (`node --import tsx src/bin.ts`): exit codes,
 * where output goes, files written.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const bin = fileURLToPath(new URL('./bin.ts', import.meta.url))
const root = fileURLToPath(new URL('../../..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'))
const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** Run `tollgate args`, with `env` added to the environment (e.g. a time zone). */
function tollgateWith(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', bin, ...args],
      { cwd: root, env: { ...process.env, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    )
  })
}

const tollgate = (...args: string[]) => tollgateWith({}, ...args)

const good = file(
  'good.yaml',
  `rules:
  - { id: org-day, per: org, limits: { tokens: 1000 }, window: day }
  - { id: user-day, per: user, limits: { tokens: 200 }, window: day, code: USER_QUOTA }
`,
)
const smelly = file(
  'smelly.yaml',
  `rules:
  - { id: org-day, per: org, limits: { tokens: 100 }, window: day }
  - { id: user-day, per: user, limits: { tokens: 200 }, window: day }
`,
)
const bad = file('bad.json', JSON.stringify({ rules: [{ id: 'x', limits: { tokens: -1 }, window: 'day' }] }))
const traffic = file(
  'traffic.jsonl',
  [0, 1, 2]
    .map((i) =>
      JSON.stringify({
        t: 1_767_600_000_000 + i,
        subject: { org: 'a', user: 'u' },
        inputTokens: 90,
        maxOutputTokens: 10,
      }),
    )
    .join('\n'),
)

describe('tollgate (child process)', () => {
  it('never writes a control character it was given: ids are shown escaped, each on its own line', async () => {
    const hostile = 'a\u001b[2J\u001b[31mRED\u009b\nfake line\u202e'
    const lines = file(
      'hostile.jsonl',
      JSON.stringify({ t: 1_767_600_000_000, subject: { org: 'o', user: hostile }, inputTokens: 10 }),
    )
    const simulated = await tollgate('simulate', good, lines)
    expect(simulated.code).toBe(0)
    const explained = await tollgate(
      'explain',
      good,
      '--request',
      JSON.stringify({ subject: { org: 'o', user: hostile } }),
    )
    for (const { stdout } of [simulated, explained]) {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters
      expect(stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/)
      expect(stdout).toContain('user=a\\u001b[2J\\u001b[31mRED\\u009b\\nfake line\\u202e')
      expect(stdout.split('\n').some((line) => line.startsWith('fake line'))).toBe(false)
    }
  }, 60_000)

  it('lint: 0 when clean, 0 with warnings, 2 with warnings under --strict, 1 on errors', async () => {
    const clean = await tollgate('lint', good)
    expect(clean).toMatchObject({ code: 0, stdout: `${good}: ok (2 rules)\n` })
    const warned = await tollgate('lint', smelly)
    expect(warned.code).toBe(0)
    expect(warned.stdout).toContain('warning rules.1.limits.tokens [child-cap-above-parent]')
    expect((await tollgate('lint', smelly, '--strict')).code).toBe(2)
    const failed = await tollgate('lint', bad)
    expect(failed.code).toBe(1)
    expect(failed.stderr).toContain('error rules.0.limits.tokens [schema]')
    // JSON goes to stdout whatever the result, the exit code unchanged (with errors, it went to stderr)
    const json = await tollgate('lint', bad, '--json')
    expect(json).toMatchObject({ code: 1, stderr: '' })
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      errors: [{ path: ['rules', 0, 'limits', 'tokens'] }],
    })
    const warnedJson = await tollgate('lint', smelly, '--json', '--strict')
    expect(warnedJson).toMatchObject({ code: 2, stderr: '' })
    expect(JSON.parse(warnedJson.stdout)).toMatchObject({
      ok: true,
      warnings: [{ code: 'child-cap-above-parent' }],
    })
  }, 60_000)

  it('simulate: prints the summary, writes the report, fails on a bad policy or bad traffic', async () => {
    const report = join(dir, 'report.html')
    const ok = await tollgate('simulate', good, traffic, '--report', report)
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/allowed\s+2/)
    expect(ok.stdout).toMatch(/user-day\s+USER_QUOTA\s+429\s+1\s+0/)
    expect(readFileSync(report, 'utf8')).toContain('<svg')
    const json = await tollgate('simulate', good, traffic, '--json')
    expect(JSON.parse(json.stdout)).toMatchObject({ requests: 3, allowed: 2, refused: 1 })
    expect((await tollgate('simulate', bad, traffic)).code).toBe(1)
    const broken = await tollgate(
      'simulate',
      good,
      file('broken.jsonl', '{"t": 1, "subject": {"org": "a", "user": "u"}}\nnope'),
    )
    expect(broken.code).toBe(1)
    expect(broken.stderr).toContain('line 2: not JSON')
    expect((await tollgate('simulate', good, join(dir, 'missing.jsonl'))).code).toBe(1)
    // times in seconds, read as milliseconds, put the traffic in January 1970: said, not refused
    const seconds = file(
      'seconds.jsonl',
      '{"t": 1767600000, "subject": {"org": "a", "user": "u"}}\n{"t": 1767600060, "subject": {"org": "a", "user": "u"}}',
    )
    const early = await tollgate('simulate', good, seconds)
    expect(early.code).toBe(0)
    expect(early.stderr).toContain(
      'the traffic starts at 1970-01-21T11:00:00Z: are its times in seconds? A number is read as milliseconds since the epoch',
    )
    expect(ok.stderr).toBe('')
  }, 60_000)

  it('simulate: a line whose usage the engine refuses stops the run with its number, or is counted with --skip-invalid (it crashed)', async () => {
    const small = { inputTokens: 10, maxOutputTokens: 10 }
    const usage = file(
      'bad-usage.jsonl',
      [
        { t: 1_767_600_000_000, subject: { org: 'a', user: 'u' }, ...small },
        // admitted (20 tokens of 200), then refused at the settle: the run died with a stack trace
        { t: 1_767_600_000_001, subject: { org: 'a', user: 'v' }, ...small, cachedInputTokens: 50 },
        { t: 1_767_600_000_002, subject: { org: 'a', user: 'w' }, ...small, outputTokens: 2e12 },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    )
    const stopped = await tollgate('simulate', good, usage)
    expect(stopped).toMatchObject({ code: 1, stdout: '' })
    expect(stopped.stderr).toContain('line 2: "cachedInputTokens" (50) cannot exceed "inputTokens" (10)')
    expect(stopped.stderr).not.toMatch(/\n\s+at /) // no stack trace
    const skipped = await tollgate('simulate', good, usage, '--skip-invalid', '--json')
    expect(skipped).toMatchObject({ code: 0, stderr: '' })
    expect(JSON.parse(skipped.stdout)).toMatchObject({
      requests: 3,
      allowed: 1,
      failed: 2,
      errors: [{ code: 'invalid_line', count: 2, line: 2 }],
    })
  }, 60_000)

  it('simulate: a report that cannot be written fails before the replay; a failed run keeps an earlier report', async () => {
    for (const target of [join(dir, 'no-such-dir', 'report.html'), dir]) {
      const run = await tollgate('simulate', good, traffic, '--report', target)
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(/ENOENT|EISDIR/)
      expect(run.stdout).toBe('') // it printed the whole summary, then failed
    }
    const earlier = file('earlier.html', 'an earlier report')
    const broken = file('broken-again.jsonl', 'nope')
    expect((await tollgate('simulate', good, broken, '--report', earlier)).code).toBe(1)
    expect(readFileSync(earlier, 'utf8')).toBe('an earlier report')
    const fresh = join(dir, 'fresh.html')
    expect((await tollgate('simulate', good, broken, '--report', fresh)).code).toBe(1)
    expect(existsSync(fresh)).toBe(false)
    // a longer earlier report is replaced whole by a run that works
    writeFileSync(earlier, 'x'.repeat(5_000_000))
    expect((await tollgate('simulate', good, traffic, '--report', earlier)).code).toBe(0)
    expect(readFileSync(earlier, 'utf8')).toMatch(/^<!doctype html>[\s\S]*<\/html>\s*$/i)
  }, 60_000)

  it('times: the same instant in every time zone, no offset read as UTC; impossible dates refused (Date.parse read the local zone and rolled Feb 31 over)', async () => {
    const newYork = { TZ: 'America/New_York' }
    const noon = Date.UTC(2024, 2, 10, 12)
    const local = file(
      'local-times.jsonl',
      ['2024-03-10 12:00', '2024-03-10T12:05', '2024-03-10 12:10:00+00:00']
        .map((t) => JSON.stringify({ t, subject: { org: 'a', user: 'u' }, inputTokens: 1 }))
        .join('\n'),
    )
    for (const env of [newYork, { TZ: 'Asia/Kolkata' }, { TZ: 'UTC' }]) {
      const run = await tollgateWith(env, 'simulate', good, local, '--json')
      expect(run, env.TZ).toMatchObject({ code: 0, stderr: '' })
      expect(JSON.parse(run.stdout), env.TZ).toMatchObject({ requests: 3, from: noon, to: noon + 600_000 })
    }
    const request = JSON.stringify({ subject: { org: 'a', user: 'u' } })
    for (const text of ['2024-03-10 12:00', '2024-03-10T12:00', '2024-03-10T08:00-04:00', '1710072000000']) {
      const run = await tollgateWith(newYork, 'explain', good, '--request', request, '--at', text, '--json')
      expect(run.code, text).toBe(0)
      expect(JSON.parse(run.stdout).at, text).toBe(noon)
    }
    const midnight = await tollgateWith(
      newYork,
      'explain',
      good,
      '--request',
      request,
      '--at',
      '2024-03-10',
      '--json',
    )
    expect(JSON.parse(midnight.stdout).at).toBe(Date.UTC(2024, 2, 10))

    // impossible or unknown times: a bad traffic line (exit 1, its number), a bad --at (exit 64)
    for (const t of [
      'Sun Feb 31 2024',
      '2024-02-31',
      '2024-13-01 00:00',
      '2024-03-10 25:00',
      '2024-03-10T12:60Z',
    ]) {
      const bad = file('bad-time.jsonl', JSON.stringify({ t, subject: { org: 'a', user: 'u' } }))
      const run = await tollgateWith(newYork, 'simulate', good, bad)
      expect(run, t).toMatchObject({ code: 1, stdout: '' })
      expect(run.stderr, t).toContain(`line 1: "t" must be ms since the epoch or an ISO 8601 time`)
      expect(run.stderr, t).toContain('UTC')
      expect(run.stderr, t).toContain(JSON.stringify(t))
      const at = await tollgateWith(newYork, 'explain', good, '--request', request, '--at', t)
      expect(at, t).toMatchObject({ code: 64, stdout: '' })
      expect(at.stderr, t).toContain('--at must be ms since the epoch or an ISO 8601 time')
      expect(at.stderr, t).toContain(JSON.stringify(t))
    }
  }, 120_000)

  it('explain: prints the steps; a malformed request exits 1, a bad command line 64', async () => {
    const request = JSON.stringify({
      subject: { org: 'a', user: 'u' },
      inputTokens: 150,
      maxOutputTokens: 100,
    })
    const ok = await tollgate('explain', good, '--request', request, '--at', '2026-01-05T00:00:00Z')
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain('user-day: REFUSE — USER_QUOTA (429): tokens 250 > 200')
    expect(ok.stdout).toContain('refused: USER_QUOTA (429) by user-day')
    expect((await tollgate('explain', good)).code).toBe(64)
    // a request the engine refuses as malformed is explained, and exits 1 (an error in the input)
    const malformed = await tollgate('explain', good, '--request', JSON.stringify({ subject: { user: 5 } }))
    expect(malformed).toMatchObject({ code: 1, stdout: expect.stringContaining('invalid_subject') })
    expect((await tollgate('explain', good, '--request', '{oops')).code).toBe(64)
    // a subject that is no object is a malformed request too: exit 1 with the engine's refusal, as
    // documented (it exited 64, the usage text); a null subject once crashed with a stack trace
    for (const subject of ['5', 'null', '"u1"', '[]']) {
      const noObject = await tollgate('explain', good, '--request', `{"subject":${subject}}`)
      expect(noObject, subject).toMatchObject({
        code: 1,
        stdout: expect.stringContaining('malformed: no rule is walked'),
        stderr: expect.stringContaining('the engine refuses to evaluate the request: invalid_subject'),
      })
      expect(noObject.stderr).not.toContain('Usage:')
    }
    expect((await tollgate('explain', good, '--request', '[]')).code).toBe(64)
    const farAway = await tollgate('explain', good, '--request', request, '--at', '100000000000000000000')
    expect(farAway).toMatchObject({ code: 64, stderr: expect.stringContaining('years 1000 to 9999') })
    expect((await tollgate('lint')).code).toBe(64)
    expect((await tollgate('frobnicate')).code).toBe(64)
    expect((await tollgate('lint', good, '--bogus')).code).toBe(64)
    const help = await tollgate('--help')
    expect(help).toMatchObject({ code: 0, stdout: expect.stringContaining('Usage: tollgate <command>') })
    // a command's own --help prints the usage too, wherever it stands, instead of an unknown option
    for (const args of [
      ['lint', '--help'],
      ['simulate', '-h'],
      ['explain', good, '--help'],
    ])
      expect(await tollgate(...args)).toMatchObject({
        code: 0,
        stdout: expect.stringContaining('Usage: tollgate <command>'),
      })
  }, 60_000)
})
