/**
 * Test helpers of the Linux datapath (imported by tests only).
 */
import { LinuxDatapath } from './datapath.js';

/**
 * A LinuxDatapath whose maps are pinned under `bpffsDir` with an ipcache of
 * `ipcacheSize` entries, for tests of the maps alone: routing points at a
 * network namespace that does not exist (`/run/netns/<tag>-none`), so nothing
 * is changed on the host, and no cgroup is attached.
 */
export function mapsOnlyDatapath(
  tag: string,
  bpffsDir: string,
  ipcacheSize: number,
): LinuxDatapath {
  return new LinuxDatapath({
    router: {
      mode: 'native',
      nodeIP: '192.0.2.1',
      podCIDR: '10.250.0.0/24',
      mtu: 1500,
      netns: `/run/netns/${tag}-none`,
    },
    bpffsDir,
    cgroupPath: '/nonexistent',
    mapSizes: { ipcache: ipcacheSize },
  });
}
