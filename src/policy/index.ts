/**
 * Network policy: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and
 * NetworkPolicy translated to one form and computed, per local endpoint and
 * direction, into policy map entries (identity, protocol, port prefix) -> allow/deny.
 * Pure logic; the datapath (src/datapath/linux/policy/) writes the entries to BPF maps.
 */
export * from './cidr-identities.js';
export * from './engine.js';
export * from './ports.js';
export * from './selector.js';
export * from './selector-cache.js';
export * from './translate.js';
