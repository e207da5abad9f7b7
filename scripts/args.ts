/**
 * The one argument parser of scripts/ and bench/: node:util's parseArgs, with
 * what every command here wants around it: -h/--help, flags that fall back to
 * an environment variable and then a default, usage errors that name the bad
 * input (exit code 2, the usage after them), and numbers and URLs checked as
 * they are read.
 */
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** A flag that takes a value, `--name VALUE` or `--name=VALUE`. */
export interface Flag {
  /** Repeatable: every value, in order (otherwise the last one counts). */
  multiple?: boolean;
  /** Read when the flag is not given; empty counts as unset. */
  env?: string;
  /** When neither the flag nor `env` gives a value. */
  default?: string;
}

/** A value and where it came from (`--rate`, `TRAFFIC_RATE`), for the message when it is wrong. */
export interface Given {
  value: string;
  source: string;
}

type Values<F extends Record<string, Flag>> = {
  [K in keyof F]: F[K] extends { multiple: true } ? string[] : F[K] extends { default: string } ? Given : Given | undefined;
};

export interface CommandLine<F extends Record<string, Flag>> {
  flags: Values<F>;
  positionals: string[];
}

/**
 * Reads `argv` (what follows the script's name) against `flags`. Returns
 * undefined when -h or --help is anywhere in it; throws UsageError for an
 * unknown flag, a flag without its value, or any positional unless
 * `positionals` allows them.
 */
export function readCommandLine<const F extends Record<string, Flag>>(
  argv: readonly string[],
  flags: F,
  { env = {}, positionals = false }: { env?: Readonly<Record<string, string | undefined>>; positionals?: boolean } = {},
): CommandLine<F> | undefined {
  const options = Object.fromEntries(Object.entries(flags).map(([name, flag]) => [name, { type: 'string' as const, multiple: flag.multiple === true }]));
  // Not strict: the checks below say what is wrong in the commands' words, and
  // a value may start with one dash (`--duration -1` is out of range, not missing).
  const { tokens } = parseArgs({
    args: [...argv],
    options: { ...options, help: { type: 'boolean', short: 'h' } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((token) => token.kind === 'option' && token.name === 'help')) return undefined;
  const given = new Map<string, Given[]>();
  const words: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      if (!positionals) throw new UsageError(`unknown argument ${JSON.stringify(token.value)}`);
      words.push(token.value);
      continue;
    }
    if (!Object.hasOwn(flags, token.name)) throw new UsageError(`unknown argument ${JSON.stringify(token.rawName)}`);
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) throw new UsageError(`${token.rawName} needs a value`);
    given.set(token.name, [...(given.get(token.name) ?? []), { value: token.value, source: token.rawName }]);
  }
  const values = Object.fromEntries(
    Object.entries(flags).map(([name, flag]): [string, Given | string[] | undefined] => {
      const all = given.get(name) ?? [];
      if (flag.multiple) return [name, all.map((g) => g.value)];
      if (all.length > 0) return [name, all.at(-1)];
      const fromEnv = flag.env === undefined ? undefined : env[flag.env];
      if (flag.env !== undefined && fromEnv) return [name, { value: fromEnv, source: flag.env }];
      return [name, flag.default === undefined ? undefined : { value: flag.default, source: `--${name}` }];
    }),
  );
  return { flags: values as Values<F>, positionals: words };
}

/** A plain number (digits and a point: no sign, no exponent) from `min` to `max`, whole when `integer`. */
export function numberFrom({ value, source }: Given, { min, max, integer = false }: { min: number; max: number; integer?: boolean }): number {
  const n = /^\s*[+]?(\d+(\.\d*)?|\.\d+)\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${source} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** An http or https URL without its trailing slash; with `originOnly`, nothing after the host and port. */
export function httpUrlFrom({ value, source }: Given, { originOnly = false } = {}): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${source} must be a URL such as http://127.0.0.1:8080, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${source} must be an http or https URL, got ${JSON.stringify(value)}`);
  if (originOnly && url.href !== `${url.origin}/`) {
    throw new UsageError(`${source} must be a base URL (scheme, host and port) such as http://127.0.0.1:18080, got ${JSON.stringify(value)}`);
  }
  return url.href.replace(/\/+$/, '');
}

/** What a command is: its name (before each error line), its usage, how it reads its command line and what it does. */
export interface Command<O> {
  name: string;
  usage: string;
  /** The options, or undefined for --help; throws UsageError. */
  parse(argv: readonly string[], env: NodeJS.ProcessEnv): O | undefined;
  /** Resolves with the exit code. */
  run(options: O): Promise<number>;
}

/**
 * Runs `command` as this process: --help prints the usage and exits 0, a
 * usage error exits 2 with the message and the usage, a failure exits 1 with
 * its stack, and otherwise the exit code is what `run` resolved with.
 */
export function runCommand<O>(command: Command<O>): void {
  const main = async (): Promise<number> => {
    let options: O | undefined;
    try {
      options = command.parse(process.argv.slice(2), process.env);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      process.stderr.write(`${command.name}: ${err.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (options === undefined) {
      process.stdout.write(`${command.usage}\n`);
      return 0;
    }
    return command.run(options);
  };
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${command.name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
