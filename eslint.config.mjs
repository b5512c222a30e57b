// ESLint with typescript-eslint over our TypeScript (the compiled .js beside it is not ours to lint).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/*.js', 'node_modules/', '.ci/', '.demo/', '.test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_name` marks a parameter or binding kept on purpose (a listener's signature, a rest that drops keys).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Node-RED's convention: `const node = this` in a node's constructor, used by its handlers.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['node'] }],
      // Control characters are matched on purpose: texts from servers and files are made printable.
      'no-control-regex': 'off',
      // A listener declared before the server that it waits for is created.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Harnesses load untyped modules (node-red-node-test-helper) and our compiled nodes by path.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
