/**
 * Entry point of a lab kubelet (run by the supervisor in the node's namespace):
 *   node --import tsx src/lab/kubelet/main.ts --cluster NAME --node NODE [--kubeconfig FILE]
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../util/log.js';
import { apiServerNodeURL, findNode, loadCluster } from '../state.js';
import { KubeClient } from '../../k8s/client.js';
import { kubeconfigClientOptions } from '../../k8s/client-config.js';
import { LabApi } from './api.js';
import { Kubelet } from './kubelet.js';

const { values } = parseArgs({
  options: {
    cluster: { type: 'string' },
    node: { type: 'string' },
    api: { type: 'string' },
    kubeconfig: { type: 'string' },
  },
});
if (!values.cluster || !values.node) {
  process.stderr.write('usage: kubelet/main.ts --cluster NAME --node NODE [--api URL]\n');
  process.exit(2);
}
const cluster = loadCluster(values.cluster);
const node = findNode(cluster, values.node);
const log = createLogger({ subsys: 'lab-kubelet', node: node.name });
// --kubeconfig: https with the node's credential, as a real kubelet
const auth = values.kubeconfig ? kubeconfigClientOptions({ path: values.kubeconfig }) : undefined;
const server = values.api ?? auth?.server ?? apiServerNodeURL(cluster);
// H2's REST client with pooled connections; the watch and status writes go through it
const api = new LabApi(server, new KubeClient({ ...auth, server }));
const kubelet = new Kubelet(cluster, node, api, log);
const stop = () => {
  log.info('kubelet stopping');
  void kubelet.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
log.info('kubelet starting', { api: api.baseURL });
await kubelet.run();
