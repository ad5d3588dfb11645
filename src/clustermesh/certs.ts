/**
 * The mesh's certificates: the helpers live in src/util/certs.ts (the lab's
 * API server PKI uses them too, and lab/ may import only lower layers).
 */
export * from '../util/certs.js';
