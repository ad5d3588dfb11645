/** Security identities: labels, numbering (cluster ID in bits 16-23), the allocator and its backends. */
export * from './labels.js';
export * from './numeric.js';
export * from './backend.js';
export * from './kvstore-backend.js';
export * from './allocator.js';
