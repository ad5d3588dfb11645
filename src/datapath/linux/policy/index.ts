/** The policy datapath: per-endpoint policy maps, connection tracking, drop counters, TCX programs. */
export * from './maps.js';
export * from './programs.js';
export * from './policy-datapath.js';
