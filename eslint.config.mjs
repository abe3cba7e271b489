// Lint guards two things a Temporal project cannot afford to get wrong:
// workflow code must stay deterministic, and no promise may float unobserved.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', 'bin/**', 'eslint.config.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflows are replayed: no I/O, no clocks, no randomness, no activity code by value.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code is replayed and must not do I/O; move this into an activity.' })),
          patterns: [
            { group: ['pg', '@aws-sdk/*', '@smithy/*', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'], message: 'Workflow code must not import I/O clients; call an activity instead.' },
            { group: ['../activities/*', '../engines/*', '../stack/*', '../catalog/*', '../client/*', '../config/*', '../platform/*'], allowTypeImports: true, message: 'Workflows may import only types from outside src/workflows and src/domain.' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow: timers must be durable.' },
        { name: 'setInterval', message: 'Use a workflow loop with sleep().' },
        { name: 'fetch', message: 'Workflow code must not do I/O; call an activity.' },
        { name: 'process', message: 'Workflow code must not read the environment; pass it in the input.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Workflow time comes from the workflow clock; use Date.now() only through @temporalio/workflow semantics is fine but prefer workflowInfo().' },
        { object: 'Math', property: 'random', message: 'Use uuid4() or deterministic ids from @temporalio/workflow.' },
      ],
    },
  },
);
