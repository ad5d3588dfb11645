/**
 * The lab's API server as a test fixture, for tests of the layers below the
 * lab (k8s, identity, dns, clustermesh, operator). Production code of those
 * layers never imports `src/lab/`; their tests reach it only through here.
 */
export {
  fakeNode,
  startTestApiServer,
  type TestApiServer,
} from '../../src/lab/apiserver/testing.js';
