/**
 * A hook for counting BPF map writes without the datapath layer knowing about
 * metrics: the agent installs a recorder (src/agent/metrics.ts turns it into
 * `tendril_bpf_map_ops_total{map_name,operation,outcome}`); without one,
 * counting costs one undefined check per operation.
 */

/** Map operations that are counted. */
export type MapOperation = 'update' | 'delete' | 'batch_update' | 'batch_delete';

/** Receives one count per map write (`n` elements for batches). */
export interface MapOpRecorder {
  record(mapName: string, operation: MapOperation, outcome: 'success' | 'fail', n: number): void;
}

/** The process's recorder (one agent per process). */
export let mapOpRecorder: MapOpRecorder | undefined;

/** Installs (or with undefined removes) the process's map-operation recorder. */
export function setMapOpRecorder(recorder: MapOpRecorder | undefined): void {
  mapOpRecorder = recorder;
}
