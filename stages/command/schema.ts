// Params schema of the `command` kind; schemas/stages/command.schema.json holds the same document
// (a test keeps the two equal) so editors can validate experiment files without running code.
export const commandParamsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://ca-pipe.dev/schemas/stages/command.schema.json',
  title: 'command stage params',
  description:
    'Runs a program (argv, no shell). Inputs arrive as CA_PIPE_IN_<NAME> and {in.<name>}, the output dir as CA_PIPE_OUT and {out}.',
  type: 'object',
  additionalProperties: false,
  required: ['cmd'],
  properties: {
    cmd: {
      description: 'Program and arguments. Tokens {out}, {scratch}, {base} and {in.<name>} are substituted inside elements.',
      type: 'array',
      minItems: 1,
      items: { type: 'string' },
    },
    deps: {
      description: 'Files or directories (relative to the experiment file) whose content enters the cache key.',
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
    },
    outs: {
      description: 'Paths relative to the output dir that must exist after the command succeeds.',
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
    },
    env: {
      description: 'Extra environment variables.',
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
    },
    cwd: {
      description: 'Working directory relative to the experiment file (default: the experiment dir).',
      type: 'string',
    },
  },
} as const;
