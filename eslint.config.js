// The project's lint: neostandard (https://github.com/neostandard/neostandard), the
// successor of `standard` that the code's style already follows, with its TypeScript rules.
// Each rule changed below is changed on purpose, for the reason beside it.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', 'proofs/native/build/**', 'test-artifacts/**', 'src/provider/dashboard/**']
  }),
  {
    rules: {
      // `void promise` marks a promise deliberately left to run (its errors are handled inside)
      'no-void': ['error', { allowAsStatement: true }],
      // `for await (const x of it) return x` reads the first item of an async iterator
      'no-unreachable-loop': 'off',
      // loops waiting on a flag that a callback or timer sets: the rule cannot see the callback
      'no-unmodified-loop-condition': 'off',
      // noble's hash names (keccak_256) are spelled as the library exports them
      camelcase: ['error', { allow: ['^keccak_256$'], properties: 'never' }]
    }
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `_` names what destructuring or a loop must bind but does not use
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' }],
      // a const and a type of the same name (Tag) are one concept in two spaces, as TypeScript intends
      '@typescript-eslint/no-redeclare': 'off'
    }
  },
  {
    files: ['test/**'],
    rules: {
      // the malformed-input tables throw `{code}` records that the classifier reads, on purpose
      'no-throw-literal': 'off'
    }
  }
]
