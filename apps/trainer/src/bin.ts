#!/usr/bin/env node
// The `sparse-train` executable (package.json `bin`): lets the @sparse libraries find the packages the
// trainer provides for them (src/peer-hooks.ts says when that is needed), then runs the CLI (./cli.ts).
import { register } from 'node:module';
import pkg from '../package.json';
import type { PeerHookData } from './peer-hooks.js';

const data: PeerHookData = {
  trainerURL: import.meta.url,
  packages: Object.keys(pkg.dependencies).filter((name) => !name.startsWith('@sparse/')),
};
register('./peer-hooks.js', import.meta.url, { data });
await import('./cli.js');
