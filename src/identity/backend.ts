/**
 * The narrow storage interface the IdentityAllocator needs. Two backends:
 * KVStoreIdentityBackend (etcd / in-memory, Cilium's kvstore mode) and a CRD
 * backend (CiliumIdentity objects, written by the operator's side). Label
 * sets cross this interface as canonical strings (labels.ts `labelsString`),
 * identities as numbers.
 *
 * The one hard rule: `allocate` is atomic, so that two allocators (two
 * processes, or two concurrent calls) never bind one label set to two IDs,
 * nor one ID to two label sets. `identityBackendConformance` (backend-
 * conformance.ts) checks it for any implementation.
 */

/** One stored identity. */
export interface IdentityRecord {
  id: number;
  /** Canonical label string. */
  labels: string;
}

/** What `allocate` did. */
export type AllocateResult =
  /** `labels` is now bound to `id` (created: true), or was already bound to `id` (created: false). */
  | { id: number; created: boolean }
  /** `id` is bound to another label set: try another ID. */
  | { taken: true };

export interface IdentityBackend {
  /** The ID bound to this label set, if any. */
  lookup(labels: string): Promise<number | undefined>;
  /** The label set bound to this ID, if any. */
  get(id: number): Promise<string | undefined>;
  /**
   * Atomically binds `labels` to `id`: if `labels` already has an ID, returns
   * it ({ id: existing, created: false }, whatever `id` was asked); else if
   * `id` is free, binds it ({ id, created: true }); else { taken: true }.
   */
  allocate(id: number, labels: string): Promise<AllocateResult>;
  /** Removes the binding of `id` if it is still bound to `labels`; otherwise does nothing. */
  release(id: number, labels: string): Promise<void>;
  /** Every stored identity, sorted by ID. */
  list(): Promise<IdentityRecord[]>;
}
