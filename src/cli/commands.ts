/**
 * The command groups of the `tendril` CLI, in help order. Each group's file
 * exports `register(program)`; add a group by adding one line here.
 */
import type { Command } from 'commander';
import { register as version } from './version.js';
import { register as lab } from './lab.js';

export type RegisterCommands = (program: Command) => void;

export const commandGroups: RegisterCommands[] = [version, lab];
