import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');

/** The package's entry points, as an application imports them, mapped to the sources. */
const ENTRY_POINTS: Record<string, string> = {
  sagaflow: 'src/index.ts',
  'sagaflow/testing': 'src/testing/index.ts',
  'sagaflow/typeorm': 'src/store/typeorm/index.ts',
  'sagaflow/nestjs': 'src/nestjs/index.ts',
  'sagaflow/adapters': 'src/bus/adapters/index.ts',
  'sagaflow/opentelemetry': 'src/observers/otel/index.ts',
};

/**
 * The settings of a strict application: `strict`, `exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`, the two
 * decorator flags sagaflow needs, and a CommonJS module (Node's default for a package without `"type"`).
 */
export const STRICT_APP_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts'],
  module: ts.ModuleKind.Node16,
  moduleResolution: ts.ModuleResolutionKind.Node16,
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  esModuleInterop: true,
  skipLibCheck: true,
  noEmit: true,
  types: ['node'],
  baseUrl: ROOT,
  paths: Object.fromEntries(Object.entries(ENTRY_POINTS).map(([name, file]) => [name, [file]])),
};

/**
 * Type-checks `files` (name → source text; virtual, never written) as modules of an application that imports
 * `sagaflow` and its subpaths, resolved to this repository's sources. Returns the diagnostics of those files only,
 * as `name(line,col): message` lines; empty when they compile.
 */
export function typecheck(files: Readonly<Record<string, string>>, options: ts.CompilerOptions = STRICT_APP_OPTIONS): string[] {
  const dir = path.join(ROOT, '.typecheck');
  const virtual = new Map(Object.entries(files).map(([name, text]) => [path.join(dir, name), text]));
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (file) => virtual.has(path.resolve(file)) || fileExists.call(host, file);
  host.readFile = (file) => virtual.get(path.resolve(file)) ?? readFile.call(host, file);
  host.getSourceFile = (file, language, onError, create) => {
    const text = virtual.get(path.resolve(file));
    return text === undefined ? getSourceFile.call(host, file, language, onError, create) : ts.createSourceFile(file, text, language);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const file of virtual.keys()) {
    const source = program.getSourceFile(file);
    if (source === undefined) throw new Error(`${file} was not part of the program`);
    diagnostics.push(...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source));
  }
  return diagnostics.map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file === undefined || d.start === undefined) return message;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${path.relative(dir, d.file.fileName)}(${line + 1},${character + 1}): TS${d.code} ${message}`;
  });
}
