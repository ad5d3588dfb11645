/** The service catalog: mesh annotations, ClusterService, datapath entries, exports, imports, MCS, VIPs. */
export * from './annotations.js';
export * from './cluster-service.js';
export * from './backends.js';
export * from './catalog.js';
export * from './catalog-store.js';
export * from './export.js';
export * from './remote-only.js';
export * from './mcs.js';
export * from './vip.js';
