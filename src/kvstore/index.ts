/** The kvstore package: interface, errors, backends, etcd launcher and auth setup. */
export * from './types.js';
export * from './errors.js';
export * from './memory.js';
export * from './etcd.js';
export * from './etcd-server.js';
export * from './batch.js';
