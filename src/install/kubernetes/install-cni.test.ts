/**
 * Runs the agent DaemonSet's install-cni script for real (sh, cp, mv) with
 * its paths pointed into a temporary directory, then runs the CNI plugin
 * wrapper it wrote, as a kubelet would, with CNI_COMMAND=VERSION.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveManifestOptions } from './options.js';
import { CNI_CONFLIST, CNI_PLUGIN, cniConfigMap, installCniScript } from './workloads.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

describe('install-cni init container script', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tendril-install-cni-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  // the image's /opt/tendril: this checkout's sources and node_modules (symlinked: cp -a keeps links)
  const image = join(tmp, 'image');
  mkdirSync(image);
  symlinkSync(join(repo, 'src'), join(image, 'src'));
  symlinkSync(join(repo, 'node_modules'), join(image, 'node_modules'));
  copyFileSync(join(repo, 'package.json'), join(image, 'package.json'));
  const cniConfigDir = join(tmp, 'cni-config');
  mkdirSync(cniConfigDir);
  const o = resolveManifestOptions({ clusterName: 'c1', set: ['routing-mode=tunnel'] });
  const conflist = (cniConfigMap(o).data as Record<string, string>)[CNI_CONFLIST]!;
  writeFileSync(join(cniConfigDir, CNI_CONFLIST), conflist);
  const host = join(tmp, 'host');
  const paths = {
    imageRoot: image,
    hostOpt: join(host, 'opt'),
    hostCniBin: join(host, 'opt/cni/bin'),
    hostCniConf: join(host, 'etc/cni/net.d'),
    cniConfigDir,
    nodeRuntime: join(host, 'opt/tendril'),
  };
  mkdirSync(paths.hostOpt, { recursive: true });
  const runScript = () =>
    spawnSync('sh', ['-c', installCniScript(paths)], {
      encoding: 'utf8',
      env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin` },
      timeout: 60_000,
    });

  it('installs the runtime, the plugin wrapper and the network config; the plugin answers VERSION', () => {
    const r = runScript();
    assert.equal(r.status, 0, r.stderr);
    const plugin = join(paths.hostCniBin, CNI_PLUGIN);
    accessSync(plugin, constants.X_OK);
    accessSync(join(paths.nodeRuntime, 'node'), constants.X_OK);
    assert.equal(readFileSync(join(paths.hostCniConf, CNI_CONFLIST), 'utf8'), conflist);
    assert.equal(JSON.parse(conflist).plugins[0].mtu, 1450);
    const v = spawnSync(plugin, [], {
      encoding: 'utf8',
      env: { CNI_COMMAND: 'VERSION', PATH: '/usr/bin:/bin' },
      input: '{"cniVersion":"1.0.0"}',
      timeout: 60_000,
    });
    assert.equal(v.status, 0, v.stderr + v.stdout);
    const out = JSON.parse(v.stdout) as { cniVersion: string; supportedVersions: string[] };
    assert.ok(out.supportedVersions.includes('1.0.0'), v.stdout);
  });

  it('running it again (an upgrade) replaces everything and leaves no temporary files', () => {
    writeFileSync(join(paths.nodeRuntime, 'stale'), 'x');
    const r = runScript();
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(join(paths.nodeRuntime, 'stale')));
    assert.deepEqual(readdirSync(paths.hostOpt).sort(), ['cni', 'tendril']);
    assert.deepEqual(readdirSync(paths.hostCniBin), [CNI_PLUGIN]);
    assert.deepEqual(readdirSync(paths.hostCniConf), [CNI_CONFLIST]);
  });
});
