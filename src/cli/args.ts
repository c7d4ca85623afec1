/** Command-line option parsing: specs, --help text, one-line usage errors, the kernels choice. */
import type { Kernels } from '../nn/kernels.js';
import { TsKernels } from '../nn/kernels.js';
import { loadWasmKernelsSync } from '../nn/wasm.js';
import { optionFlag } from '../train/train.js';

/** An error the user can fix: printed as one line, exit code 2. */
export class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------
// Option parsing

export type Kind = 'int' | 'number' | 'string' | 'bool' | 'choice';
export interface OptSpec {
  key: string;
  kind: Kind;
  help: string;
  default?: unknown;
  choices?: string[];
  /** Value name in --help. */
  arg?: string;
}

export function parseArgs(command: string, argv: string[], specs: OptSpec[], positionals: string[]): { opts: Record<string, unknown>; pos: string[]; given: Set<string> } {
  const byFlag = new Map(specs.map((s) => [optionFlag(s.key), s]));
  const opts: Record<string, unknown> = {};
  for (const s of specs) opts[s.key] = s.default;
  const given = new Set<string>();
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || a === '--') {
      pos.push(a);
      continue;
    }
    let flag = a;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (eq > 0) {
      flag = a.slice(0, eq);
      value = a.slice(eq + 1);
    }
    let spec = byFlag.get(flag);
    let negated = false;
    if (!spec && flag.startsWith('--no-')) {
      spec = byFlag.get('--' + flag.slice(5));
      negated = spec?.kind === 'bool';
      if (!negated) spec = undefined;
    }
    if (!spec) throw new UsageError(`unknown option ${flag} for 'grid-lstm ${command}'; see grid-lstm ${command} --help`);
    given.add(spec.key);
    if (spec.kind === 'bool') {
      if (value !== undefined) throw new UsageError(`${flag} takes no value`);
      opts[spec.key] = !negated;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value (${spec.arg ?? spec.kind})`);
      value = argv[++i];
    }
    opts[spec.key] = convert(flag, spec, value);
  }
  if (pos.length > positionals.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(pos[positionals.length])} for 'grid-lstm ${command}'; see grid-lstm ${command} --help`);
  }
  return { opts, pos, given };
}

export function convert(flag: string, spec: OptSpec, value: string): unknown {
  switch (spec.kind) {
    case 'int': {
      const v = Number(value);
      if (value.trim() === '' || !Number.isInteger(v)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
      if (!Number.isSafeInteger(v)) throw new UsageError(`${flag} must be a whole number between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}, got ${value}`);
      return v;
    }
    case 'number': {
      const v = Number(value);
      if (value.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${flag} must be a number, got ${JSON.stringify(value)}`);
      return v;
    }
    case 'choice':
      if (!spec.choices!.includes(value)) throw new UsageError(`${flag} must be one of ${spec.choices!.join(', ')}, got ${JSON.stringify(value)}`);
      return value;
    default:
      return value;
  }
}

export function helpText(usage: string, about: string, specs: OptSpec[]): string {
  const lines = [`usage: ${usage}`, '', about, '', 'options:'];
  for (const s of specs) {
    const flag = s.kind === 'bool' ? `${optionFlag(s.key)}/--no-${optionFlag(s.key).slice(2)}` : `${optionFlag(s.key)} ${s.arg ?? s.kind.toUpperCase()}`;
    const def = s.default === undefined || s.default === null ? '' : ` (default: ${s.default})`;
    lines.push(`  ${flag.padEnd(34)} ${s.help}${def}`);
  }
  lines.push(`  ${'--debug'.padEnd(34)} print stack traces on errors`, `  ${'--help'.padEnd(34)} show this help`);
  return lines.join('\n');
}

export const COMMON: OptSpec[] = [
  {
    key: 'kernels',
    kind: 'choice',
    choices: ['wasm', 'wasm-simd', 'ts'],
    default: 'wasm',
    help: 'compute kernels: wasm (WebAssembly, relaxed SIMD where the engine has it), wasm-simd (plain SIMD), ts (the TypeScript reference, slow)',
  },
];

export function makeKernels(name: unknown): Kernels {
  if (name === 'ts') return new TsKernels('float32');
  if (name === 'wasm' || name === 'wasm-simd') return loadWasmKernelsSync({ variant: name === 'wasm' ? 'auto' : 'simd' });
  throw new UsageError(`unknown kernels ${String(name)}`);
}
