/**
 * The `tendril` command's composition root. Each command group lives in its
 * own file under src/cli/ and exports `register(program)`; this file only
 * wires them together and turns errors into messages and exit codes.
 */
import { Command, CommanderError } from 'commander';
import { describeError } from '../util/errors.js';
import { commandGroups } from './commands.js';

/** Thrown by a command to end with a given exit status after printing its own output. */
export class ExitError extends Error {
  constructor(
    readonly status: number,
    message = '',
  ) {
    super(message);
  }
}

/** Builds the command tree (exported for tests and for the help text). */
export function buildProgram(): Command {
  const program = new Command('tendril')
    .description('Tendril: a multi-cluster network mesh with an eBPF datapath')
    .option('--context <name>', 'the cluster context to use (see `tendril config get-contexts`)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.configureOutput({ outputError: (str, write) => write(str) });
  for (const register of commandGroups) register(program);
  return program;
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode;
    }
    if (err instanceof ExitError) {
      if (err.message) process.stderr.write(`Error: ${err.message}\n`);
      return err.status;
    }
    process.stderr.write(`Error: ${describeError(err)}\n`);
    if (process.env.TENDRIL_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
