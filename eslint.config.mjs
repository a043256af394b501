import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

/**
 * The layers of src/, lowest first: a folder may import its own layer and the ones below, never one above
 * (ARCHITECTURE.md draws the same stack). The one allowance: the engine uses the store contract
 * (store/instance-store.ts), which the stores implement.
 */
const LAYERS = [
  ['errors', 'time', 'input'],
  ['core'],
  ['bus'],
  ['policies'],
  ['steps'],
  ['parallel', 'observers'],
  ['workflow'],
  ['state'],
  ['engine'],
  ['store'],
  ['versions', 'schedule', 'operating'],
  ['runtime'],
  ['inspector'],
  ['cli', 'nestjs', 'testing'],
];
const layeringZones = LAYERS.flatMap((layer, i) => {
  const above = LAYERS.slice(i + 1).flat();
  return layer.flatMap((dir) =>
    above.length === 0
      ? []
      : above.map((upper) => ({
          target: `./src/${dir}`,
          from: `./src/${upper}`,
          ...(dir === 'engine' && upper === 'store' ? { except: ['./instance-store.ts'] } : {}),
          message: `${dir}/ is below ${upper}/ in the layering (see ARCHITECTURE.md): move the shared piece down instead.`,
        })),
  );
});
const topLevel = { target: './src', from: './src/index.ts', message: 'src/index.ts is the public entry; import the module itself.' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/node_modules/**', 'coverage/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    // Without a resolver that knows .ts files, import-x cannot follow an import and its rules pass silently.
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.d.ts', '.js', '.json'] })],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'import-x/no-cycle': 'error',
      'import-x/no-self-import': 'error',
      'import-x/no-restricted-paths': ['error', { zones: [...layeringZones, topLevel], basePath: import.meta.dirname }],
    },
  },
  {
    files: ['tests/**/*.ts'],
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // jest's asymmetric matchers (expect.objectContaining, …) are typed `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
);
