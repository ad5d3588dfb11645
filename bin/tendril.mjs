#!/usr/bin/env node
// The `tendril` command. Sources are TypeScript run through tsx's loader, so a
// checkout needs no build step: `npx tendril ...` works right after `npm ci`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
