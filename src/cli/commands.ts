/**
 * The command groups of the `tendril` CLI, in help order. Each group's file
 * exports `register(program)`; add a group by adding one line here.
 */
import type { Command } from 'commander';
import { register as version } from './version.js';
import { register as lab } from './lab.js';
import { register as run } from './run.js';
import { register as exec } from './exec.js';
import { register as logs } from './logs.js';
import { register as config } from './config.js';
import { register as apply } from './apply.js';
import { register as get } from './get.js';
import { register as describe } from './describe.js';
import { register as del } from './delete.js';
import { register as label } from './label.js';
import { register as patch } from './patch.js';
import { register as scale } from './scale.js';
import { register as rollout } from './rollout.js';
import { register as wait } from './wait.js';
import { register as install } from './install.js';
import { register as status } from './status.js';
import { register as debug } from './debug.js';
import { register as clustermesh } from './clustermesh.js';
import { register as policy } from './policy.js';
import { register as endpoint } from './endpoint.js';
import { register as hubble } from './hubble.js';

export type RegisterCommands = (program: Command) => void;

export const commandGroups: RegisterCommands[] = [
  version,
  lab,
  run,
  exec,
  logs,
  config,
  apply,
  get,
  describe,
  del,
  label,
  patch,
  scale,
  rollout,
  wait,
  install,
  status,
  debug,
  clustermesh,
  policy,
  endpoint,
  hubble,
];
