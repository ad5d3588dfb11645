/**
 * Fixtures of the DNS server's tests and the fuzz benchmark (not used by the
 * DNS server itself).
 */
import { svc } from '../services/fixtures.js';
import type { ServiceRecordStore } from './records.js';

/**
 * Adds headless Service default/big to STORE with one EndpointSlice of N
 * ready endpoints (10.244.2.1, 10.244.2.2, ...): enough records that an
 * answer for big.default.svc.cluster.local needs truncation over plain UDP.
 */
export function addBigHeadlessService(store: ServiceRecordStore, n: number): void {
  store.upsertService(svc('big', { ip: 'None' }));
  store.upsertEndpointSlice({
    metadata: {
      name: 'big-1',
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': 'big' },
    },
    addressType: 'IPv4',
    endpoints: Array.from({ length: n }, (_, i) => ({
      addresses: [`10.244.${2 + (i >> 8)}.${(i & 255) + 1}`],
      conditions: { ready: true },
    })),
  });
}
