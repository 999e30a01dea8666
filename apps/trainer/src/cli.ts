#!/usr/bin/env node
// The `sparse-train` executable. main() turns every error into a message and an exit status; what
// still escapes it is reported in one line, with the trace only when debugging.
import { main } from './cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const debug = process.argv.includes('--debug') || process.env.SPARSE_TRAIN_DEBUG === '1';
    const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : `${err.name}: ${err.message.split('\n')[0]} (run again with --debug to see the trace)`) : String(err);
    process.stderr.write(`sparse-train: internal error: ${text}\n`);
    process.exitCode = 1;
  },
);
